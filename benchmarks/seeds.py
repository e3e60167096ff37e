"""Several seeds as one job against one run per seed, wall-clock end to end.

    python benchmarks/seeds.py [--cases=ring8,dcgan_mnist] [--steps=ring8:5000,...]
        [--output=benchmarks/results/seeds.json]

Per case: one `gan_jax.main` process training N seeds (config num_seeds),
then N processes one after another, one seed each, as the experiments ran
before; each timed from launch to exit, so start-up, data loading,
compilation, evaluation and checkpoints count. The job and the separate runs
each start with an empty compilation cache of their own, and the separate
runs share theirs (the second run onwards reuses the first's programs, the
most they could). Records the load average before and after: the machine is
shared, so compare the two sides of one case, measured minutes apart.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time

from absl import app, flags

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# config file, seeds, the config's own step count unless --steps says otherwise.
CASES = {
    "ring8": ("configs/ring8.py", 5),
    "dcgan_mnist": ("configs/dcgan_mnist.py", 3),
}

FLAGS = flags.FLAGS
flags.DEFINE_list("cases", list(CASES), f"Cases to run: {', '.join(CASES)}.")
flags.DEFINE_list("steps", [], "CASE:STEPS overrides of the configs' num_train_steps.")
flags.DEFINE_string("output", "benchmarks/results/seeds.json", "Results JSON.")


def timed_run(config: str, workdir: str, cache: str, overrides: list[str]) -> float:
  env = dict(os.environ, GAN_JAX_COMPILATION_CACHE=cache, PYTHONUNBUFFERED="1")
  start = time.perf_counter()
  result = subprocess.run([sys.executable, "-m", "gan_jax.main", f"--config={config}",
                           f"--workdir={workdir}", *overrides], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True)
  seconds = time.perf_counter() - start
  if result.returncode:
    sys.exit(f"{config} {' '.join(overrides)} failed:\n{result.stderr[-3000:]}")
  return seconds


def run_case(name: str, steps: int | None, scratch: str) -> dict:
  config, num_seeds = CASES[name]
  common = [f"--config.num_train_steps={steps}"] if steps else []
  if steps:  # a decaying schedule keeps its shape over the shorter run
    common += [f"--config.optimizer.{p}.decay_steps=0" for p in ("generator", "discriminator")]
  load_before = os.getloadavg()
  job = timed_run(config, f"{scratch}/{name}-job", f"{scratch}/{name}-job-cache",
                  [*common, f"--config.num_seeds={num_seeds}"])
  singles = [timed_run(config, f"{scratch}/{name}-seed{seed}", f"{scratch}/{name}-cache",
                       [*common, f"--config.seed={seed}"]) for seed in range(num_seeds)]
  return {"config": config, "num_seeds": num_seeds, "num_train_steps": steps,
          "job_seconds": job, "single_seconds": singles,
          "speedup": sum(singles) / job, "load_before": load_before,
          "load_after": os.getloadavg()}


def main(argv):
  del argv
  steps = dict(entry.split(":") for entry in FLAGS.steps)
  unknown = sorted(set(FLAGS.cases) - set(CASES))
  if unknown:
    sys.exit(f"unknown case(s) {unknown}; valid: {', '.join(CASES)}")
  results = {"machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                         "python": platform.python_version()}, "cases": {}}
  scratch = tempfile.mkdtemp(prefix="seeds_benchmark_")
  try:
    for name in FLAGS.cases:
      case_steps = int(steps[name]) if name in steps else None
      results["cases"][name] = run_case(name, case_steps, scratch)
      print(name, json.dumps(results["cases"][name]), flush=True)
  finally:
    shutil.rmtree(scratch, ignore_errors=True)
  os.makedirs(os.path.dirname(os.path.abspath(FLAGS.output)), exist_ok=True)
  with open(FLAGS.output, "w") as f:
    json.dump(results, f, indent=2)
    f.write("\n")


if __name__ == "__main__":
  app.run(main)
