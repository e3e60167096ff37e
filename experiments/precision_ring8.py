"""Ring-8 in float32 and in bfloat16 over many seeds, at the precision test's
budget (tests/test_precision.py: 3,000 steps, the rates decayed over them):

    python -m experiments.precision_ring8 [--seeds=10] [--num_train_steps=3000]
        [--cpu_library_fusions=xla_default]

Each dtype is one job of all its seeds (config num_seeds; resumed where its
workdir holds one) from configs/ring8.py with only the steps, the dtype and the seeds changed, on one
device. Writes experiments/results/precision_ring8.json with each seed's
modes and high-quality fraction under the CPU they ran on (its model and
whether it has AVX512_BF16: the precision test runs on CPUs with and
without it) and the CPU kernels (`gan_jax.backend`'s choice, XLA's own,
unless --cpu_library_fusions hands YNNPACK its share); a run on another CPU
or kernels adds its rows, one on the same CPU and kernels replaces them. The spread over seeds is the yardstick for the test's one-seed
comparison: at 3,000 steps a run is still converging, and seeds of the same
dtype differ by more than a single float32/bfloat16 pair does.
"""

from __future__ import annotations

import os
import sys

from absl import app, flags

from configs import ring8
from experiments import report, summary
from gan_jax import backend, compilation_cache, provenance
from gan_jax.train import train_and_evaluate

FLAGS = flags.FLAGS
DTYPES = ("float32", "bfloat16")


def define_flags():
  """Flags for the command line only, so that tests can import this module."""
  flags.DEFINE_integer("seeds", 10, "Seeds per dtype: 0 .. seeds-1, one job each.")
  flags.DEFINE_integer("num_train_steps", 3000, "Steps (the rates decay over them).")
  flags.DEFINE_enum("cpu_library_fusions", backend.CPU_LIBRARY_FUSIONS_CHOSEN,
                    list(backend.CPU_LIBRARY_FUSIONS), "What XLA:CPU hands YNNPACK "
                    "(gan_jax.backend); the default is the backend's choice.")
  flags.DEFINE_string("workdir_root", "runs/precision_ring8", "Where the jobs' workdirs go.")
  flags.DEFINE_string("output", "experiments/results/precision_ring8.json", "Results JSON.")


def run_config(compute_dtype: str, num_seeds: int, steps: int):
  config = ring8.get_config()
  config.compute_dtype = compute_dtype
  config.num_seeds = num_seeds
  config.num_train_steps = steps
  config.eval_every_steps = config.checkpoint_every_steps = steps
  return config


def main(argv):
  del argv
  compilation_cache.enable()
  os.environ[backend.CPU_LIBRARY_FUSIONS_ENV] = FLAGS.cpu_library_fusions
  machine = {"cpu": provenance.cpu_features(), "cpu_library_fusions": FLAGS.cpu_library_fusions,
             "num_train_steps": FLAGS.num_train_steps, "runs": {}}
  for dtype in DTYPES:
    config = run_config(dtype, FLAGS.seeds, FLAGS.num_train_steps)
    workdir = os.path.join(FLAGS.workdir_root, FLAGS.cpu_library_fusions, dtype)
    result = train_and_evaluate(config, workdir)  # resumes; returns at once when finished
    if result["step"] < config.num_train_steps:
      sys.exit(f"{workdir} stopped at step {result['step']}; not recorded")
    frozen = [row["seed"] for row in result["seeds"] if "diverged_at_step" in row]
    if frozen:
      sys.exit(f"{dtype}: seeds {frozen} diverged; not recorded")
    machine["runs"][dtype] = [{"seed": row["seed"], "modes": row["modes"],
                               "high_quality_fraction": row["high_quality_fraction"]}
                              for row in result["seeds"]]
  results = {"machines": []}
  if os.path.exists(FLAGS.output):
    results = report.load(FLAGS.output)
  results["machines"] = [m for m in results["machines"]
                         if (m["cpu"], m["cpu_library_fusions"]) != (machine["cpu"],
                                                                     machine["cpu_library_fusions"])]
  results["machines"].append(machine)
  summary.write_json(FLAGS.output, results)
  print(report.precision_ring8_table(results))

if __name__ == "__main__":
  define_flags()
  app.run(main)
