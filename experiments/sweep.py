"""Runs named variants of one config as separate `gan_jax.main` processes.

    from experiments.sweep import run_variants
    results = run_variants("configs/dcgan_mnist.py", {"hinge": ["--config.loss.name=hinge"]},
                           workdir_root="runs/sweep", parallel=2)

Each variant is a list of `--config.x=v` overrides. Up to `parallel` runs go
at once; on a GPU, each process is limited to its share of the device memory
(XLA otherwise takes most of it for the first process). With `pin_cpus`, each
process runs on one CPU core of its own: on XLA:CPU two single-core runs on
this 2-core machine did 1.6x the steps of one run on both cores. A finished
workdir is
not run again, so an interrupted sweep resumes where it stopped (and a run
resumes bitwise from its last checkpoint). Returns, per variant, the last
evaluation's metrics, the run's wall-clock seconds, the load averages (1, 5
and 15 minutes) as it ended, and its return code.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import Optional

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def last_evaluation(workdir: str) -> Optional[dict]:
  """The metrics row of the run's last evaluation ("eval/..." keys), if any."""
  path = os.path.join(workdir, "metrics.jsonl")
  if not os.path.exists(path):
    return None
  last = None
  with open(path) as f:
    for line in f:
      row = json.loads(line)
      if any(key.startswith("eval/") for key in row):
        last = row
  return last


def seed_evaluations(row: Optional[dict], num_seeds: int) -> list[Optional[dict]]:
  """A job's evaluation row split per seed: seed `i`'s `<name>/seed_<i>`
  values under `<name>`, with the step; None for a seed the row lacks (it
  diverged). One seed: the row itself."""
  if num_seeds == 1 or row is None:
    return [row] * num_seeds
  split = []
  for index in range(num_seeds):
    suffix = f"/seed_{index}"
    values = {k[:-len(suffix)]: v for k, v in row.items() if k.endswith(suffix)}
    split.append({"step": row["step"], **values} if values else None)
  return split


def median_steps_per_sec(workdir: str) -> Optional[float]:
  """Median of the logged training rates (evaluation pauses excluded by the median)."""
  path = os.path.join(workdir, "metrics.jsonl")
  if not os.path.exists(path):
    return None
  with open(path) as f:
    rates = sorted(row["steps_per_sec"] for row in map(json.loads, f)
                   if "steps_per_sec" in row)
  return rates[len(rates) // 2] if rates else None


RUN_RECORD = "sweep_run.json"  # a finished run's wall-clock, kept in its workdir


def run_provenance(workdir: str) -> dict:
  """What a run's metrics rest on: its config's hash, the evaluation's sample
  count, seed and EMA use, and the reference classifier with its SHA-256."""
  from gan_jax import provenance
  from gan_jax.evaluation import classifier as classifier_lib
  from gan_jax.evaluation import image_evaluation

  config = provenance.load_config(workdir)
  dataset = config.dataset.name
  record = {"config_sha256": provenance.config_hash(config),
            "num_samples": config.eval.num_samples, "eval_seed": config.eval.seed,
            "used_ema": config.ema.get("decay", 0.0) > 0, "dataset": dataset}
  extractor = image_evaluation.CHANNEL_CLASSIFIERS.get(dataset, dataset)
  if extractor in classifier_lib.NAMES:
    record.update(extractor=extractor,
                  extractor_sha256=classifier_lib.load_provenance(extractor)["sha256"],
                  reference_split=image_evaluation.REFERENCE_SPLIT,
                  floor_split=image_evaluation.FLOOR_SPLIT)
  return record


def _recorded_seconds(workdir: str) -> Optional[float]:
  path = os.path.join(workdir, RUN_RECORD)
  if not os.path.exists(path):
    return None
  with open(path) as f:
    return json.load(f).get("seconds")


def _finished(workdir: str, num_train_steps: Optional[int]) -> bool:
  row = last_evaluation(workdir)
  return row is not None and num_train_steps is not None and row["step"] >= num_train_steps


def can_pin_cpus(parallel: int) -> bool:
  """Whether `parallel` runs can each have a core of their own (and more than one run)."""
  return 1 < parallel <= len(os.sched_getaffinity(0))


def run_variants(config: str, variants: dict[str, list[str]], *, workdir_root: str,
                 parallel: int = 1, num_train_steps: Optional[int] = None,
                 pin_cpus: bool = False, log=print) -> dict[str, dict]:
  cpus = sorted(os.sched_getaffinity(0))
  if pin_cpus and parallel > len(cpus):
    raise ValueError(f"pin_cpus needs a core per process: parallel={parallel}, "
                     f"{len(cpus)} cores available.")
  env = dict(os.environ, PYTHONUNBUFFERED="1")
  env.setdefault("XLA_PYTHON_CLIENT_MEM_FRACTION", f"{0.9 / max(parallel, 1):.3f}")
  pending = list(variants.items())
  running: dict[str, tuple[subprocess.Popen, float, object, int]] = {}
  results: dict[str, dict] = {}
  os.makedirs(workdir_root, exist_ok=True)
  while pending or running:
    while pending and len(running) < parallel:
      name, overrides = pending.pop(0)
      workdir = os.path.join(workdir_root, name)
      if _finished(workdir, num_train_steps):
        results[name] = {"eval": last_evaluation(workdir), "returncode": 0,
                         "seconds": _recorded_seconds(workdir), "workdir": workdir,
                         "steps_per_sec": median_steps_per_sec(workdir),
                         "provenance": run_provenance(workdir)}
        continue
      steps = [f"--config.num_train_steps={num_train_steps}"] if num_train_steps else []
      command = [sys.executable, "-m", "gan_jax.main", f"--config={config}",
                 f"--workdir={workdir}", *steps, *overrides]
      os.makedirs(workdir, exist_ok=True)
      log_file = open(os.path.join(workdir, "sweep.log"), "a")
      slot = min(set(range(parallel)) - {entry[3] for entry in running.values()})
      pin = (lambda core=cpus[slot]: os.sched_setaffinity(0, {core})) if pin_cpus else None
      running[name] = (subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=log_file,
                                        stderr=subprocess.STDOUT, preexec_fn=pin),
                       time.time(), log_file, slot)
      log(f"started {name}: {' '.join(overrides) or '(defaults)'}")
    time.sleep(1.0)
    for name in list(running):
      process, start, log_file, _ = running[name]
      if process.poll() is None:
        continue
      log_file.close()
      del running[name]
      workdir = os.path.join(workdir_root, name)
      seconds = time.time() - start
      if process.returncode == 0:
        with open(os.path.join(workdir, RUN_RECORD), "w") as f:
          json.dump({"seconds": seconds, "overrides": variants[name]}, f)
      results[name] = {"eval": last_evaluation(workdir), "returncode": process.returncode,
                       "seconds": seconds, "workdir": workdir,
                       "steps_per_sec": median_steps_per_sec(workdir),
                       "load_average": list(os.getloadavg()),
                       "provenance": run_provenance(workdir) if process.returncode == 0 else None}
      log(f"finished {name} (rc={process.returncode}) after {seconds:.0f} s")
  return {name: results[name] for name in variants}
