"""The multi-host acceptance check, repeated: a job of 2 local processes x 2
CPU devices through `gan_jax.launch`, stopped by signals and relaunched.

    python -m experiments.pod_rehearsal [--trials=4] [--config=configs/dcgan_mnist.py:tiny]
        [--output=experiments/results/pod_rehearsal.json]

Per trial, in a fresh workdir: a launch that never ends by itself (a huge
step count) receives, once a few steps are logged, one of the signal
patterns below; the launcher must exit 0 within the timeout, both processes
must announce the same stop step, and the latest checkpoint must be that
step. A relaunch then trains 5 steps more and must exit 0 at that step. Then
one plain launch to the config's own end. Anything over `--timeout_s` counts
as a hang (and is killed). Writes every launch's outcome and the totals:
launches, signals sent, hangs, failures.
"""

from __future__ import annotations

import json
import os
import platform
import re
import signal
import subprocess
import sys
import tempfile
import time

import psutil
from absl import app, flags, logging

from gan_jax.checkpoint import Checkpointer
from gan_jax.metric_writer import read_metrics

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NEVER = 10**6
FLAGS = flags.FLAGS


def define_flags():
  flags.DEFINE_integer("trials", 4, "Stop-and-relaunch trials (cycling through the patterns).")
  flags.DEFINE_string("config", "configs/dcgan_mnist.py:tiny", "Config of the job.")
  flags.DEFINE_integer("timeout_s", 300, "Seconds after which a launch counts as hung.")
  flags.DEFINE_string("output", "experiments/results/pod_rehearsal.json", "Results JSON.")


def _launch_command(config: str, workdir: str, *overrides: str) -> list[str]:
  return [sys.executable, "-m", "gan_jax.launch", "--num_processes=2",
          "--devices_per_process=2", "--", f"--config={config}", f"--workdir={workdir}",
          *overrides]


def _workers(launcher: subprocess.Popen) -> list[int]:
  children = psutil.Process(launcher.pid).children()
  return [p.pid for p in sorted(children, key=lambda p: next(
      a for a in p.cmdline() if a.startswith("--process_id")))]


# Who gets SIGTERM (or SIGINT), and when: (name, function of launcher, worker pids).
PATTERNS = {
    "SIGTERM to the launcher": lambda launcher, pids: launcher.send_signal(signal.SIGTERM),
    "SIGINT to the launcher": lambda launcher, pids: launcher.send_signal(signal.SIGINT),
    "SIGTERM to process 1 only": lambda launcher, pids: os.kill(pids[1], signal.SIGTERM),
    "SIGTERM to each process, 1.5 s apart": lambda launcher, pids: (
        os.kill(pids[0], signal.SIGTERM), time.sleep(1.5), os.kill(pids[1], signal.SIGTERM)),
}


def _logged_step(workdir: str) -> int:
  try:
    return max((row["step"] for row in read_metrics(workdir)), default=0)
  except (FileNotFoundError, ValueError):
    return 0


def _finish(launcher: subprocess.Popen, timeout_s: float) -> tuple[int | None, str, float]:
  start = time.perf_counter()
  try:
    output = launcher.communicate(timeout=timeout_s)[0]
    return launcher.returncode, output, time.perf_counter() - start
  except subprocess.TimeoutExpired:
    for pid in [*_workers(launcher), launcher.pid]:
      try:
        os.kill(pid, signal.SIGKILL)
      except ProcessLookupError:
        pass
    return None, launcher.communicate()[0], time.perf_counter() - start


def stop_trial(pattern: str, config: str, workdir: str, timeout_s: float) -> dict:
  launcher = subprocess.Popen(_launch_command(config, workdir, f"--config.num_train_steps={NEVER}"),
                              cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True)
  deadline = time.time() + timeout_s
  while _logged_step(workdir) == 0 and launcher.poll() is None and time.time() < deadline:
    time.sleep(0.2)
  record = {"pattern": pattern, "signalled_after_logged_step": _logged_step(workdir)}
  if launcher.poll() is None:
    PATTERNS[pattern](launcher, _workers(launcher))
  returncode, output, seconds = _finish(launcher, timeout_s)
  stops = {int(p): int(s) for p, s in
           re.findall(r"^\[(\d)\] .*every process saves step (\d+)", output, re.M)}
  saved = Checkpointer(workdir).latest_step()
  record.update(returncode=returncode, hung=returncode is None, seconds_after_signal=seconds,
                announced_stop_steps=stops, latest_checkpoint=saved)
  record["ok"] = (returncode == 0 and set(stops) == {0, 1} and len(set(stops.values())) == 1
                  and saved == stops[0])
  if not record["ok"]:
    record["output_tail"] = output[-3000:]
    return record
  target = saved + 5
  launcher = subprocess.Popen(_launch_command(config, workdir, f"--config.num_train_steps={target}"),
                              cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True)
  returncode, output, seconds = _finish(launcher, timeout_s)
  resumed = Checkpointer(workdir).latest_step()
  record.update(relaunch_returncode=returncode, relaunch_hung=returncode is None,
                relaunch_seconds=seconds, relaunch_final_step=resumed,
                ok=returncode == 0 and resumed == target)
  if not record["ok"]:
    record["output_tail"] = output[-3000:]
  return record


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)  # not Orbax's INFO lines on every checkpoint read
  root = tempfile.mkdtemp(prefix="pod_rehearsal_")
  names = list(PATTERNS)
  trials = [stop_trial(names[i % len(names)], FLAGS.config, os.path.join(root, f"trial{i}"),
                       FLAGS.timeout_s) for i in range(FLAGS.trials)]
  for trial in trials:
    print(json.dumps({k: v for k, v in trial.items() if k != "output_tail"}), flush=True)
  start = time.perf_counter()
  plain = subprocess.run(_launch_command(FLAGS.config, os.path.join(root, "plain")),
                         cwd=REPO_ROOT, capture_output=True, text=True, timeout=FLAGS.timeout_s)
  plain_record = {"returncode": plain.returncode, "seconds": time.perf_counter() - start,
                  "final_step": Checkpointer(os.path.join(root, "plain")).latest_step()}
  launches = 1 + sum(1 + ("relaunch_returncode" in t) for t in trials)
  report = {
      "config": FLAGS.config, "processes": 2, "devices_per_process": 2,
      "command": "python -m gan_jax.launch --num_processes=2 --devices_per_process=2 -- "
                 f"--config={FLAGS.config} --workdir=W",
      "launches": launches,
      "signal_patterns_tried": len(trials),
      "hangs": sum(t["hung"] + t.get("relaunch_hung", False) for t in trials),
      "failures": sum(not t["ok"] for t in trials) + (plain.returncode != 0),
      "plain_run": plain_record, "trials": trials,
      "load_average_after": os.getloadavg(), "cpu_count": os.cpu_count(),
      "platform": platform.platform()}
  print(json.dumps({k: v for k, v in report.items() if k != "trials"}, indent=2))
  os.makedirs(os.path.dirname(os.path.abspath(FLAGS.output)), exist_ok=True)
  with open(FLAGS.output, "w") as f:
    json.dump(report, f, indent=2)
    f.write("\n")
  return 1 if report["failures"] or report["hangs"] else 0


if __name__ == "__main__":
  define_flags()
  app.run(main)
