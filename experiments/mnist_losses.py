"""Experiment (b): DCGAN on MNIST under four adversarial losses, three seeds each.

    python experiments/mnist_losses.py [--parallel=2] [--workdir_root=runs/mnist_losses]

Every run is the main job (configs/dcgan_mnist.py: 6000 steps, batch 64,
Adam(2e-4, 0.5) decayed linearly) with only the loss changed, and for
WGAN-GP also D's batch norm removed (a gradient penalty needs a D whose output
for one example does not depend on the rest of the batch). Each run is scored
once, at its last step, on 10,000 EMA samples against the 10,000 MNIST test
images (classifier features; `gan_jax.image_evaluation`). Writes
experiments/results/mnist_losses.json and prints the Markdown table: mean ±
standard error over the seeds, and the real-vs-real floor.

Runs go `--parallel` at a time, each pinned to one CPU core when there are
enough cores; finished runs are not repeated.
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np
from absl import app, flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from experiments.sweep import can_pin_cpus, run_variants  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_integer("parallel", 2, "Runs at once.")
flags.DEFINE_integer("num_seeds", 3, "Seeds per loss (0, 1, ...).")
flags.DEFINE_string("workdir_root", "runs/mnist_losses", "Where the runs go.")
flags.DEFINE_string("output", "experiments/results/mnist_losses.json", "Results JSON.")

CONFIG = "configs/dcgan_mnist.py"
LOSSES = {
    "non-saturating": ["--config.loss.name=non_saturating"],
    "hinge": ["--config.loss.name=hinge"],
    "least squares": ["--config.loss.name=least_squares"],
    "WGAN-GP (λ=10, no BN in D)": ["--config.loss.name=wasserstein",
                                   "--config.regularizers.gradient_penalty.weight=10",
                                   "--config.discriminator.batch_norm=False"],
}
# One evaluation, at the end, on 10k samples.
EVALUATION = ["--config.eval_every_steps=6000", "--config.eval.num_samples=10000"]
COLUMNS = ("fid", "kid", "precision", "recall", "density", "coverage")


def variant_name(loss: str, seed: int) -> str:
  return f"{loss.split(' ')[0].lower()}_s{seed}"


def mean_and_standard_error(values: list[float]) -> tuple[float, float]:
  values = np.asarray(values, np.float64)
  se = values.std(ddof=1) / np.sqrt(len(values)) if len(values) > 1 else float("nan")
  return float(values.mean()), float(se)


def summarize(results: dict, num_seeds: int) -> dict:
  rows = {}
  for loss in LOSSES:
    evals = [results[variant_name(loss, s)]["eval"] for s in range(num_seeds)]
    evals = [e for e in evals if e is not None]
    rows[loss] = {"num_runs": len(evals), "seconds": [
        results[variant_name(loss, s)]["seconds"] for s in range(num_seeds)]}
    for column in COLUMNS:
      values = [e[f"eval/{column}"] for e in evals if f"eval/{column}" in e]
      if values:
        rows[loss][column] = mean_and_standard_error(values)
        rows[loss][column + "_per_seed"] = values
  floor_source = next(e for r in results.values() if (e := r["eval"]) is not None)
  rows["real train vs test (floor)"] = {
      c: (floor_source[f"eval/floor/{c}"], float("nan")) for c in COLUMNS}
  return rows


def table(rows: dict) -> str:
  lines = ["| loss | runs | " + " | ".join(COLUMNS) + " |", "|" + "---|" * (len(COLUMNS) + 2)]
  for name, row in rows.items():
    cells = []
    for column in COLUMNS:
      mean, se = row.get(column, (float("nan"), float("nan")))
      cells.append(f"{mean:.4g}" if np.isnan(se) else f"{mean:.4g} ± {se:.2g}")
    lines.append(f"| {name} | {row.get('num_runs', '–')} | " + " | ".join(cells) + " |")
  return "\n".join(lines)


def main(argv):
  del argv
  variants = {variant_name(loss, seed): [*overrides, f"--config.seed={seed}", *EVALUATION]
              for seed in range(FLAGS.num_seeds) for loss, overrides in LOSSES.items()}
  results = run_variants(CONFIG, variants, workdir_root=FLAGS.workdir_root,
                         parallel=FLAGS.parallel, num_train_steps=6000,
                         pin_cpus=can_pin_cpus(FLAGS.parallel))
  rows = summarize(results, FLAGS.num_seeds)
  os.makedirs(os.path.dirname(os.path.abspath(FLAGS.output)), exist_ok=True)
  with open(FLAGS.output, "w") as f:
    json.dump({"config": CONFIG, "variants": variants, "runs": results, "table": rows},
              f, indent=2)
  print(table(rows))


if __name__ == "__main__":
  app.run(main)
