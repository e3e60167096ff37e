"""Ring-8 and grid-25 with every registered loss over several seeds.

    python experiments/mixtures.py [--seeds=5] [--num_train_steps=N] [--losses=a,b]

Writes experiments/results/mixtures.json and prints a Markdown table in the
layout of PacGAN's Table 1 (Lin et al. 2018): modes captured, percentage of
high-quality samples and reverse KL, mean ± standard error over seeds. Each
run starts from the dataset's config (configs/ring8.py, configs/grid25.py)
and changes only the loss and the seed; the Wasserstein loss gets the
gradient penalty, since without a constraint its critic is unbounded.
"""

from __future__ import annotations

import json
import os
import sys
import time

import numpy as np
from absl import app, flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from configs import grid25, ring8  # noqa: E402
from gan_jax import compilation_cache  # noqa: E402
from gan_jax.losses import ADVERSARIAL_LOSSES  # noqa: E402
from gan_jax.train import train_and_evaluate  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_integer("seeds", 5, "Seeds per (dataset, loss): 0 .. seeds-1.")
flags.DEFINE_list("only_seeds", None, "Run just these seeds (to split the work "
                  "over processes with separate --output files).")
flags.DEFINE_integer("num_train_steps", None, "Override the configs' step count.")
flags.DEFINE_list("losses", None, "Losses to run (default: every registered one).")
flags.DEFINE_list("datasets", ["ring8", "grid25"], "Datasets to run.")
flags.DEFINE_list("merge", None, "Results JSON files of split runs (see --only_seeds) "
                  "to merge into --output before running.")
flags.DEFINE_string("workdir_root", "runs/mixtures", "Where the runs' workdirs go.")
flags.DEFINE_string("output", "experiments/results/mixtures.json", "Results JSON.")

CONFIGS = {"ring8": ring8, "grid25": grid25}
WGAN_GP_WEIGHT = 1.0


def run_config(dataset: str, loss: str, seed: int):
  config = CONFIGS[dataset].get_config()
  config.loss.name = loss
  config.seed = seed
  if loss == "wasserstein":
    config.regularizers.gradient_penalty.weight = WGAN_GP_WEIGHT
  if FLAGS.num_train_steps:
    config.num_train_steps = FLAGS.num_train_steps
    for player in config.optimizer.values():
      if player.schedule != "constant":
        player.decay_steps = FLAGS.num_train_steps  # keep the schedule's shape
  return config


def summarise(values) -> tuple[float, float]:
  values = np.asarray(values, np.float64)
  sem = values.std(ddof=1) / np.sqrt(len(values)) if len(values) > 1 else 0.0
  return float(values.mean()), float(sem)


def table(results: dict) -> str:
  lines = ["| dataset | loss | modes | high-quality % | reverse KL | s/run |",
           "|---|---|---|---|---|---|"]
  for dataset, by_loss in results.items():
    for loss, runs in by_loss.items():
      modes = summarise([r["modes"] for r in runs])
      hq = summarise([100 * r["high_quality_fraction"] for r in runs])
      kl = summarise([r["reverse_kl"] for r in runs])
      secs = np.mean([r["seconds"] for r in runs])
      lines.append(f"| {dataset} | {loss} | {modes[0]:.1f} ± {modes[1]:.1f} | "
                   f"{hq[0]:.1f} ± {hq[1]:.1f} | {kl[0]:.3f} ± {kl[1]:.3f} | {secs:.0f} |")
  return "\n".join(lines)


def main(argv):
  del argv
  compilation_cache.enable()
  losses = FLAGS.losses or ADVERSARIAL_LOSSES.names()
  results: dict = {}
  if os.path.exists(FLAGS.output):
    with open(FLAGS.output) as f:
      results = json.load(f)["results"]
  for path in FLAGS.merge or ():
    with open(path) as f:
      for dataset, by_loss in json.load(f)["results"].items():
        for loss, runs in by_loss.items():
          merged = results.setdefault(dataset, {}).setdefault(loss, [])
          seen = {r["seed"] for r in merged}
          merged.extend(r for r in runs if r["seed"] not in seen)
          merged.sort(key=lambda r: r["seed"])
  if FLAGS.merge:
    with open(FLAGS.output, "w") as f:
      json.dump({"results": results}, f, indent=2)
  for dataset in FLAGS.datasets:
    for loss in losses:
      runs = results.setdefault(dataset, {}).setdefault(loss, [])
      done = {r["seed"] for r in runs}
      seeds = [int(s) for s in FLAGS.only_seeds] if FLAGS.only_seeds else range(FLAGS.seeds)
      for seed in seeds:
        if seed in done:
          continue
        config = run_config(dataset, loss, seed)
        workdir = os.path.join(FLAGS.workdir_root, f"{dataset}-{loss}-seed{seed}")
        start = time.time()
        result = train_and_evaluate(config, workdir)
        runs.append({"seed": seed, "seconds": time.time() - start,
                     "num_train_steps": config.num_train_steps, **result})
        os.makedirs(os.path.dirname(os.path.abspath(FLAGS.output)), exist_ok=True)
        with open(FLAGS.output, "w") as f:
          json.dump({"results": results}, f, indent=2)
        print(f"{dataset} {loss} seed {seed}: {result}", flush=True)
  print(table(results))


if __name__ == "__main__":
  app.run(main)
