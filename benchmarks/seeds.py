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

Then, in this process, the step alone (`step`): the compiled train step for
one seed and for N, the N seeds both vmapped and unrolled (the two seed maps
of `gan_jax.backend`), fed one fixed random batch, timed in alternation (best
of three rounds), with XLA's FLOP count per step, the rate it reached
against the float32 matmul peak measured beside it, and how many cores were
busy. This says what bounds the step (a step bound by dispatch would run N
seeds in about the time of one) and which seed map the platform should use.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time

import jax
import numpy as np

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)

from benchmarks.step_suite import matmul_peak_flops  # noqa: E402
from gan_jax import backend, seeds  # noqa: E402
from gan_jax.data import dataset_spec  # noqa: E402
from gan_jax.families import build_family  # noqa: E402
from gan_jax.provenance import environment  # noqa: E402
from gan_jax.sharding import make_mesh  # noqa: E402
from gan_jax.step import make_train_step  # noqa: E402

# config file, seeds, the config's own step count unless --steps says otherwise.
CASES = {
    "ring8": ("configs/ring8.py", 5),
    "dcgan_mnist": ("configs/dcgan_mnist_classic.py", 3),
}


def parse_args(argv=None) -> argparse.Namespace:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--cases", default=",".join(CASES), help=f"Cases to run: {', '.join(CASES)}.")
  parser.add_argument("--steps", default="", help="CASE:STEPS,... overrides of num_train_steps.")
  parser.add_argument("--output", default="benchmarks/results/seeds.json", help="Results JSON.")
  return parser.parse_args(argv)


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


def compiled_step(config_path: str, num_seeds: int, seed_map: str | None = None):
  """(step, state, batches) of the config's train step for `num_seeds`
  mapped by `seed_map`, with one fixed batch of random data of the dataset's
  shape."""
  module = os.path.splitext(config_path)[0].replace("/", ".")  # configs/ring8.py -> configs.ring8
  config = importlib.import_module(module).get_config()
  config.num_seeds = num_seeds
  spec = dataset_spec(config)
  family = build_family(config, spec.example_shape)
  state = jax.jit(lambda: seeds.create_state(family, config))()
  shape = ((num_seeds,) if num_seeds > 1 else ()) + (
      family.batches_per_step, config.batch_size, *spec.example_shape)
  batches = {"x": np.random.default_rng(0).uniform(-1, 1, shape).astype(np.float32)}
  if family.num_classes:
    batches["label"] = np.zeros(shape[:-len(spec.example_shape)], np.int32)
  batches = jax.device_put(batches)  # on the device once, as the pipeline leaves them
  step = make_train_step(family, make_mesh(), num_seeds=num_seeds, seed_map=seed_map)
  state, _ = step(state, batches)  # compiles
  jax.block_until_ready(state)
  return step, state, batches


def measure_step(name: str, steps_per_round: int = 200, rounds: int = 3) -> dict:
  """Seconds per step for one seed and for the case's N under each seed map
  (keys `seeds_1`, `seeds_N_vmap`, `seeds_N_unrolled`), best of `rounds`
  alternating rounds; FLOP/step from XLA; cores busy = CPU time / wall."""
  config, num_seeds = CASES[name]
  runs = {"seeds_1": list(compiled_step(config, 1))}
  for seed_map in backend.SEED_MAPS:
    runs[f"seeds_{num_seeds}_{seed_map}"] = list(compiled_step(config, num_seeds, seed_map))
  best = {n: float("inf") for n in runs}
  busy = {}
  for _ in range(rounds):
    for n, run in runs.items():
      step, state, batches = run
      usage = resource.getrusage(resource.RUSAGE_SELF)
      start = time.perf_counter()
      for _ in range(steps_per_round):
        state, _ = step(state, batches)
      jax.block_until_ready(state)
      wall = time.perf_counter() - start
      after = resource.getrusage(resource.RUSAGE_SELF)
      run[1] = state
      if wall / steps_per_round < best[n]:
        best[n] = wall / steps_per_round
        busy[n] = (after.ru_utime - usage.ru_utime + after.ru_stime - usage.ru_stime) / wall
  peak = max(matmul_peak_flops() for _ in range(2))
  record = {"matmul_peak_gflops": peak / 1e9,
            "seed_map": backend.seed_map(jax.default_backend())}
  for n, (step, state, batches) in runs.items():
    analysis = step.lower(state, batches).compile().cost_analysis()
    flops = float((analysis[0] if isinstance(analysis, list) else analysis)["flops"])
    record[n] = {"seconds_per_step": best[n], "mflop_per_step": flops / 1e6,
                 "share_of_peak": flops / best[n] / peak, "cores_busy": busy[n]}
  record["step_time_ratio"] = best[f"seeds_{num_seeds}_{record['seed_map']}"] / best["seeds_1"]
  return record


def main():
  args = parse_args()
  cases = [name for name in args.cases.split(",") if name]
  steps = dict(entry.split(":") for entry in args.steps.split(",") if entry)
  unknown = sorted(set(cases) - set(CASES))
  if unknown:
    sys.exit(f"unknown case(s) {unknown}; valid: {', '.join(CASES)}")
  results = {"machine": {"platform": platform.platform(), "cpu": environment()["cpu"],
                         "cpus": os.cpu_count(), "python": platform.python_version()},
             "cases": {}}
  scratch = tempfile.mkdtemp(prefix="seeds_benchmark_")
  try:
    for name in cases:
      case_steps = int(steps[name]) if name in steps else None
      results["cases"][name] = run_case(name, case_steps, scratch)
      results["cases"][name]["step"] = measure_step(name)
      print(name, json.dumps(results["cases"][name]), flush=True)
  finally:
    shutil.rmtree(scratch, ignore_errors=True)
  os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
  with open(args.output, "w") as f:
    json.dump(results, f, indent=2)
    f.write("\n")


if __name__ == "__main__":
  main()
