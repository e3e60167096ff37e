"""Runs on several processes, started as a user would: `gan_jax.launch` runs
`gan_jax.main` (or `gan_jax.evaluate`) as 2 processes of 2 CPU devices each
on 127.0.0.1, gloo collectives between them. ring8 here (the image family in
test_multiprocess_image.py, so the two run on different pytest workers): it
must train like 1 process with 4 devices, stop together on SIGTERM wherever
it lands, resume bitwise, evaluate alike, and fail fast and legibly when a
process never joins."""

import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import psutil
import pytest

from configs import ring8
from gan_jax.checkpoint import Checkpointer
from gan_jax.data.pipeline import _ShuffledBatchSource
from gan_jax.evaluation.evaluate import evaluate_workdir
from gan_jax.launch import free_port
from gan_jax.metric_writer import read_metrics
from gan_jax.train import train_and_evaluate
from tests.cluster import (NEVER, REPO_ROOT, RING8_FLAGS, assert_close_to_single_process,
                           last_lines, launch, launch_command, losses, parsed_config)


def _stopped_step(output):
  """The step each process announced it saves on a stop request."""
  return {int(p): int(s) for p, s in
          re.findall(r"^\[(\d)\] .*every process saves step (\d+)", output, re.M)}


def _logged_steps(workdir):
  try:
    return [row["step"] for row in read_metrics(workdir)]
  except (FileNotFoundError, ValueError):  # not yet written, or a line half-written
    return []


def _interrupt(workdir, send, after_step=0):
  """Starts (or resumes) a never-ending ring8 run, lets it log a row past
  `after_step`, then calls `send(process_ids)`; returns the step both
  processes stopped at."""
  launcher = subprocess.Popen(
      launch_command(*RING8_FLAGS, f"--workdir={workdir}",
                      f"--config.num_train_steps={NEVER}"),
      cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
  deadline = time.time() + 300
  while max(_logged_steps(workdir), default=0) <= after_step:
    assert time.time() < deadline and launcher.poll() is None, last_lines(launcher.stdout.read())
    time.sleep(0.2)
  workers = sorted(psutil.Process(launcher.pid).children(),
                   key=lambda p: next(a for a in p.cmdline() if a.startswith("--process_id")))
  send([w.pid for w in workers])
  output = launcher.communicate(timeout=300)[0]
  assert launcher.returncode == 0, last_lines(output)
  stops = _stopped_step(output)
  assert set(stops) == {0, 1} and len(set(stops.values())) == 1, stops
  step = stops[0]
  assert Checkpointer(workdir).latest_step() == step, output[-2000:]
  return step


@pytest.fixture(scope="module")
def ring8_stopped_and_resumed(tmp_path_factory, ring8_arrays):
  """A ring8 run on 2 processes stopped twice by SIGTERM (first to process 1
  alone, then, resumed, to both 1.5 s apart); and an uninterrupted 2-process
  run to the second stop's step."""
  del ring8_arrays  # prepared before the processes start
  root = tmp_path_factory.mktemp("ring8_cluster")
  resumed = str(root / "resumed")
  first = _interrupt(resumed, lambda pids: os.kill(pids[1], signal.SIGTERM))

  def both_apart(pids):
    os.kill(pids[0], signal.SIGTERM)
    time.sleep(1.5)
    os.kill(pids[1], signal.SIGTERM)

  second = _interrupt(resumed, both_apart, after_step=first)
  assert second > first
  straight = str(root / "straight")
  launch(*RING8_FLAGS, f"--workdir={straight}", f"--config.num_train_steps={second}")
  return straight, resumed, second, (first, second)


@pytest.mark.slow
def test_sigterm_anywhere_stops_every_process_at_one_step_and_resumes_bitwise(
    ring8_stopped_and_resumed, assert_same_checkpoints):
  straight, resumed, final, _ = ring8_stopped_and_resumed
  assert Checkpointer(straight).all_steps() == [final]
  assert_same_checkpoints(straight, resumed)
  # The straight run also logs (and evaluates) its last step; a stop logs only on the grid.
  before_final = lambda workdir: [row for row in losses(workdir) if row["step"] < final]
  assert before_final(resumed) == before_final(straight) != []


@pytest.mark.slow
def test_ring8_on_two_processes_trains_like_one_with_four_devices(
    ring8_stopped_and_resumed, tmp_path):
  straight, _, final, _ = ring8_stopped_and_resumed
  single = str(tmp_path / "single")
  flags_given = (*RING8_FLAGS, f"--config.num_train_steps={final}")
  train_and_evaluate(parsed_config(flags_given), single)
  assert_close_to_single_process(straight, single, relative_to_motion=1e-3)
  with open(os.path.join(straight, "environment-0.json")) as f:
    environment = json.load(f)
  assert environment["process_count"] == 2 and len(environment["devices"]) == 4


@pytest.mark.slow
def test_distributed_evaluation_matches_one_process(ring8_stopped_and_resumed, tmp_path):
  straight, _, final, _ = ring8_stopped_and_resumed
  output = str(tmp_path / "eval.json")
  launch(f"--workdir={straight}", f"--output={output}", "--num_samples=600",
          module="gan_jax.evaluate")
  with open(output) as f:
    cluster = json.load(f)
  single = evaluate_workdir(straight, num_samples=600)
  assert cluster == single and cluster["step"] == final
  # In-training evaluation at the last step, on 2 processes, agrees too.
  last_row = [row for row in read_metrics(straight) if "eval/modes" in row][-1]
  at_step = evaluate_workdir(straight, num_samples=ring8.get_config("tiny").eval.num_samples)
  for key in ("modes", "high_quality_fraction"):
    assert last_row[f"eval/{key}"] == at_step[key]


def test_a_process_that_never_joins_fails_within_the_timeout(tmp_path):
  address = f"127.0.0.1:{free_port()}"
  start = time.time()
  result = subprocess.run(
      [sys.executable, "-m", "gan_jax.main", *RING8_FLAGS, f"--workdir={tmp_path / 'w'}",
       "--distributed", f"--coordinator_address={address}", "--num_processes=2",
       "--process_id=0", "--join_timeout_s=2"],
      cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
  assert result.returncode == 2
  last_line = result.stderr.strip().splitlines()[-1]
  assert address in last_line and "within 2 s" in last_line, result.stderr[-2000:]
  assert time.time() - start < 60
  assert not os.path.exists(tmp_path / "w")


@pytest.mark.parametrize("num_processes", [1, 2, 4])
def test_each_process_reads_only_its_rows_of_the_global_batch(num_processes):
  """On the data positions: the processes' rows are disjoint, and together
  exactly the single-process global batch, in order."""
  arrays = {"x": np.arange(1000, dtype=np.float32)[:, None]}
  single = _ShuffledBatchSource(arrays, seed=3, global_batch_size=32, process_index=0,
                                process_count=1)
  sources = [_ShuffledBatchSource(arrays, seed=3, global_batch_size=32, process_index=p,
                                  process_count=num_processes)
             for p in range(num_processes)]
  for batch in (0, 1, 31, 32, 500):  # 1000 / 32 is not whole: batches straddle epochs
    parts = [source[batch] for source in sources]
    for part in parts:
      assert len(part["position"]) == 32 // num_processes
    np.testing.assert_array_equal(np.concatenate([p["position"] for p in parts]),
                                  single[batch]["position"])
    np.testing.assert_array_equal(np.concatenate([p["x"] for p in parts]), single[batch]["x"])
