"""Train-step throughput against this machine's measured matmul peak.

    python benchmarks/step_benchmark.py [--config=configs/ring8.py] [--output=FILE.json]

Measures, in one process: the float32 matmul peak (a large jitted matmul),
the train step's steps/s (median of timed windows after warm-up), the step's
FLOPs from XLA's cost analysis, and their ratio. Writes JSON.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags
from jax.sharding import NamedSharding
from ml_collections import config_flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from gan_jax import provenance  # noqa: E402
from gan_jax.data import dataset_spec  # noqa: E402
from gan_jax.families import build_family  # noqa: E402
from gan_jax.step import BATCH_SPEC, make_mesh, make_train_step, replicated  # noqa: E402

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file("config", "configs/ring8.py", "Config to benchmark.")
flags.DEFINE_string("output", "benchmarks/results/step_benchmark.json", "JSON output.")
flags.DEFINE_integer("windows", 5, "Timed windows.")
flags.DEFINE_integer("steps_per_window", 200, "Steps per window.")


def matmul_peak_flops(n: int = 2048, repeats: int = 10) -> float:
  a = jnp.ones((n, n), jnp.float32)
  f = jax.jit(lambda x: x @ x)
  f(a).block_until_ready()
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    f(a).block_until_ready()
    times.append(time.perf_counter() - start)
  return 2 * n ** 3 / min(times)


def main(argv):
  del argv
  config = FLAGS.config
  spec = dataset_spec(config)
  family = build_family(config, spec.example_shape)
  mesh = make_mesh()
  state = jax.jit(lambda: family.create_state(config), out_shardings=replicated(mesh))()
  batches = jax.device_put(
      {"x": np.random.default_rng(0).normal(
          size=(family.batches_per_step, config.batch_size, *spec.example_shape)
      ).astype(np.float32)}, NamedSharding(mesh, BATCH_SPEC))
  step = make_train_step(family, mesh)
  start = time.perf_counter()
  compiled = step.lower(state, batches).compile()
  compile_seconds = time.perf_counter() - start
  flops = float(compiled.cost_analysis().get("flops", 0.0))
  for _ in range(20):
    state, metrics = step(state, batches)
  jax.block_until_ready(metrics)
  rates = []
  for _ in range(FLAGS.windows):
    start = time.perf_counter()
    for _ in range(FLAGS.steps_per_window):
      state, metrics = step(state, batches)
    jax.block_until_ready(metrics)
    rates.append(FLAGS.steps_per_window / (time.perf_counter() - start))
  steps_per_sec = statistics.median(rates)
  peak = matmul_peak_flops()
  result = {
      "config": config.dataset.name, "batch_size": config.batch_size,
      "devices": len(jax.devices()), "backend": jax.default_backend(),
      "cpu": provenance.environment()["cpu"],
      "compile_seconds": compile_seconds, "steps_per_sec": steps_per_sec,
      "examples_per_sec": steps_per_sec * config.batch_size,
      "step_flops": flops, "matmul_peak_flops": peak,
      "fraction_of_matmul_peak": flops * steps_per_sec / peak,
  }
  os.makedirs(os.path.dirname(os.path.abspath(FLAGS.output)), exist_ok=True)
  with open(FLAGS.output, "w") as f:
    json.dump(result, f, indent=2)
  print(json.dumps(result, indent=2))


if __name__ == "__main__":
  app.run(main)
