"""Ring-8 and grid-25 with every registered loss over several seeds.

    python -m experiments.mixtures [--seeds=5] [--num_train_steps=N] [--losses=a,b]
        [--only_seeds=0,1] [--rerun]

Writes experiments/results/mixtures.json and prints a Markdown table in the
layout of PacGAN's Table 1 (Lin et al. 2018): modes captured, percentage of
high-quality samples and reverse KL, mean ± standard error over seeds. Each
(dataset, loss) cell is one job of several seeds (config num_seeds,
`gan_jax.seeds`) started from the dataset's config (configs/ring8.py,
configs/grid25.py) with only the loss and the seeds changed; the Wasserstein
loss gets the gradient penalty, since without a constraint its critic is
unbounded. A row's `seconds` is its job's wall-clock over its seeds.

Seeds already in the results file are not run again, so an interrupted
command continues where it stopped: a cell's job spans its missing seeds
(from the lowest to the highest); `--rerun` trains the chosen seeds again
from step 0 (their workdirs are cleared) and replaces their rows. Each row
records its job's seeds and wall-clock (`job_seconds`, start-up, compilation
and evaluations included); the file records the machine that ran the last
job. A seed
that ends before its last step (the job stopped by SIGTERM, or the seed
diverged and was frozen) is not recorded: the command exits with status 1
naming it.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time

from absl import app, flags

from configs import grid25, ring8
from experiments import report, summary
from gan_jax import compilation_cache
from gan_jax.losses import ADVERSARIAL_LOSSES
from gan_jax.train import train_and_evaluate

FLAGS = flags.FLAGS
CONFIGS = {"ring8": ring8, "grid25": grid25}
WGAN_GP_WEIGHT = 1.0


def define_flags():
  """Flags for the command line only, so that tests can import this module."""
  flags.DEFINE_integer("seeds", 5, "Seeds per (dataset, loss): 0 .. seeds-1.")
  flags.DEFINE_list("only_seeds", None, "Run just these seeds (to split the work "
                    "over processes with separate --output files).")
  flags.DEFINE_integer("num_train_steps", None, "Override the configs' step count.")
  flags.DEFINE_list("losses", None, "Losses to run (default: every registered one).")
  flags.DEFINE_list("datasets", ["ring8", "grid25"], "Datasets to run.")
  flags.DEFINE_list("merge", None, "Results JSON files of split runs (see --only_seeds) "
                    "to merge into --output before running.")
  flags.DEFINE_bool("rerun", False, "Train the chosen seeds again from step 0, "
                    "replacing their recorded rows.")
  flags.DEFINE_string("workdir_root", "runs/mixtures", "Where the runs' workdirs go.")
  flags.DEFINE_string("output", "experiments/results/mixtures.json", "Results JSON.")


def run_config(dataset: str, loss: str, seed: int, num_seeds: int = 1):
  config = CONFIGS[dataset].get_config()
  config.loss.name = loss
  config.seed = seed
  config.num_seeds = num_seeds
  if loss == "wasserstein":
    config.regularizers.gradient_penalty.weight = WGAN_GP_WEIGHT
  if FLAGS.num_train_steps:
    config.num_train_steps = FLAGS.num_train_steps  # the schedules follow it
  return config


def merge_runs(results: dict, other: dict) -> None:
  """Adds `other`'s runs to `results`, keeping `results`' row where both have a seed."""
  for dataset, by_loss in other.items():
    for loss, runs in by_loss.items():
      merged = results.setdefault(dataset, {}).setdefault(loss, [])
      seen = {r["seed"] for r in merged}
      merged.extend(r for r in runs if r["seed"] not in seen)
      merged.sort(key=lambda r: r["seed"])


def train_and_record(runs: list[dict], config, workdir: str,
                     train=train_and_evaluate) -> tuple[list[str], bool]:
  """Trains the seeds of `config` as one job and puts each finished seed's
  row into `runs` (replacing its old row); a seed that stopped before its
  last step is left out, and named with the reason in the returned list.
  Also returns whether the job reached its last step (not stopped by a signal)."""
  start = time.time()
  result = train(config, workdir)
  job_seconds = time.time() - start
  per_seed = result["seeds"] if config.num_seeds > 1 else [{"seed": config.seed, **result}]
  stopped = []
  for row in per_seed:
    seed = row["seed"]
    if result["step"] < config.num_train_steps or "diverged_at_step" in row:
      at = row.get("diverged_at_step", result["step"])
      stopped.append(f"seed {seed} (stopped at step {at} of {config.num_train_steps})")
      continue
    runs[:] = [r for r in runs if r["seed"] != seed]
    runs.append({"seed": seed, "seconds": job_seconds / config.num_seeds,
                 "job_seconds": job_seconds, "job_seeds": config.num_seeds,
                 "num_train_steps": config.num_train_steps,
                 "step": result["step"], **{k: v for k, v in row.items()
                                            if k not in ("seed", "seed_index", "step")}})
  runs.sort(key=lambda r: r["seed"])
  return stopped, result["step"] >= config.num_train_steps


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
      merge_runs(results, json.load(f)["results"])
  if FLAGS.merge:
    summary.write_json(FLAGS.output, {"results": results})
  seeds = [int(s) for s in FLAGS.only_seeds] if FLAGS.only_seeds else range(FLAGS.seeds)
  unfinished = []
  for dataset, loss in [(dataset, loss) for dataset in FLAGS.datasets for loss in losses]:
    runs = results.setdefault(dataset, {}).setdefault(loss, [])
    missing = [s for s in seeds if FLAGS.rerun or not any(r["seed"] == s for r in runs)]
    if not missing:
      continue
    first, last = min(missing), max(missing)
    config = run_config(dataset, loss, first, last - first + 1)
    workdir = os.path.join(FLAGS.workdir_root, f"{dataset}-{loss}-seeds{first}-{last}")
    if FLAGS.rerun:
      shutil.rmtree(workdir, ignore_errors=True)
    stopped, job_finished = train_and_record(runs, config, workdir)
    unfinished.extend(f"{dataset} {loss} {reason}" for reason in stopped)
    summary.write_json(FLAGS.output, {"results": results, "machine": summary.machine()})
    for row in runs:
      if first <= row["seed"] <= last:
        print(f"{dataset} {loss} seed {row['seed']}: {row}", flush=True)
    if not job_finished:  # SIGTERM or Ctrl-C stopped it: the command stops too
      unfinished.append("the command itself (run it again without --rerun to go on)")
      break
  print(report.mixtures_table({"results": results}))
  if unfinished:
    print("not recorded, stopped before their last step: " + "; ".join(unfinished),
          file=sys.stderr)
    sys.exit(1)


if __name__ == "__main__":
  define_flags()
  app.run(main)
