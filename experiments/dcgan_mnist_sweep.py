"""The search behind configs/dcgan_mnist.py's defaults.

    python experiments/dcgan_mnist_sweep.py [--parallel=N] [--only=a,b]

Trains each variant of the MNIST DCGAN below for the config's full step
budget and ranks them by the final classifier-FID (2,500 EMA samples against
the MNIST test set). Writes experiments/results/dcgan_mnist_sweep.json. The
variants change one or two things at a time from the config as committed.

The first sweep (experiments/results/dcgan_mnist_sweep_h200.json, on a GPU)
ran from the earlier defaults: no batch norm in D, constant learning rates,
3000 steps. Its variants "d_batchnorm" and "d_batchnorm_width48" are today's
"committed" and "width48" at that budget.
"""

from __future__ import annotations

import json
import os
import sys
import time

from absl import app, flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from experiments.sweep import run_variants  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_integer("parallel", 1, "Runs at once.")
flags.DEFINE_list("only", None, "Variants to run (default: all).")
flags.DEFINE_integer("num_train_steps", None, "Override the config's step count.")
flags.DEFINE_string("workdir_root", "runs/dcgan_mnist_sweep", "Where the workdirs go.")
flags.DEFINE_string("output", "experiments/results/dcgan_mnist_sweep.json", "Results JSON.")

CONFIG = "configs/dcgan_mnist.py"
COMMON = ["--config.eval.num_samples=2500", "--config.eval_every_steps=1000"]


def lrs(g, d):
  return [f"--config.optimizer.generator.learning_rate={g}",
          f"--config.optimizer.discriminator.learning_rate={d}"]


def widths(g, d):
  return [f"--config.generator.base_features={g}",
          f"--config.discriminator.base_features={d}"]


VARIANTS = {
    "committed": [],
    "d_width64": widths(32, 64),
    "width64": widths(64, 64),
    "width48": widths(48, 48),
    "no_d_batchnorm": ["--config.discriminator.batch_norm=False"],
    "constant_lr": ["--config.optimizer.generator.schedule=constant",
                    "--config.optimizer.discriminator.schedule=constant"],
    "hinge": ["--config.loss.name=hinge"],
    "least_squares": ["--config.loss.name=least_squares"],
    "sn_hinge": ["--config.loss.name=hinge", "--config.discriminator.spectral_norm=True"],
    "lr1e-4": lrs(1e-4, 1e-4),
    "ttur_g1e-4_d4e-4": lrs(1e-4, 4e-4),
    "lr4e-4": lrs(4e-4, 4e-4),
    "batch128": ["--config.batch_size=128"],
    "kernel5": ["--config.generator.kernel_size=5", "--config.discriminator.kernel_size=5"],
    "no_ema": ["--config.ema.decay=0.0"],
    "r1_0.5": ["--config.regularizers.r1.weight=0.5"],
}


def main(argv):
  del argv
  names = FLAGS.only or list(VARIANTS)
  unknown = sorted(set(names) - set(VARIANTS))
  if unknown:
    raise app.UsageError(f"Unknown variant(s) {unknown}; valid: {', '.join(VARIANTS)}.")
  start = time.time()
  results = run_variants(CONFIG, {n: COMMON + VARIANTS[n] for n in names},
                         workdir_root=FLAGS.workdir_root, parallel=FLAGS.parallel,
                         num_train_steps=FLAGS.num_train_steps)
  report = {"config": CONFIG, "common_overrides": COMMON,
            "variants": {n: {"overrides": VARIANTS[n], **results[n]} for n in names},
            "wall_seconds": time.time() - start}
  os.makedirs(os.path.dirname(os.path.abspath(FLAGS.output)), exist_ok=True)
  with open(FLAGS.output, "w") as f:
    json.dump(report, f, indent=2)
  rows = sorted(names, key=lambda n: (results[n]["eval"] or {}).get("eval/fid", float("inf")))
  print("| variant | FID | precision | recall | classifier score | steps/s |")
  print("|---|---:|---:|---:|---:|---:|")
  for n in rows:
    e = results[n]["eval"] or {}
    print(f"| {n} | {e.get('eval/fid', float('nan')):.1f} | {e.get('eval/precision', float('nan')):.3f} "
          f"| {e.get('eval/recall', float('nan')):.3f} "
          f"| {e.get('eval/classifier_score', float('nan')):.2f} "
          f"| {results[n]['steps_per_sec'] or float('nan'):.1f} |")


if __name__ == "__main__":
  app.run(main)
