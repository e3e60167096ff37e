"""The colour emoji GAN, trained and scored with the standard Inception FID/KID:

    python -m experiments.emoji [--size=small|full] [--workdir=runs/dcgan_emoji_SIZE]

`small` is configs/dcgan_emoji_small.py (about an hour on a 2-core CPU),
`full` configs/dcgan_emoji.py (six to seven hours there). Prepare the data
and weights first: `python -m gan_jax.prepare --dataset=emoji` and
`python -m gan_jax.prepare --weights=inception`.

Trains the config in the workdir unless it holds a finished run (an
unfinished one resumes; one that stops early is not recorded), then scores
its last checkpoint with `gan_jax.evaluate`: 328 samples of the EMA generator
against the 328 test emoji, Inception FID and KID with their real-vs-real
floor (the first 328 training emoji against the same test emoji). At 328
images FID is biased upward, which the floor shows; KID is not. Writes a
10x10 grid of samples to experiments/results/figures/emoji_SIZE.png and the
row, keyed by size, to experiments/results/emoji.json with the training
wall-clock (the run's logged rates summed, compilation and evaluations
included; experiments/fid_curve.py) and the CPU it ran on.
"""

from __future__ import annotations

import os
import sys

from absl import app, flags

from configs import dcgan_emoji, dcgan_emoji_small
from experiments import report, summary
from experiments.fid_curve import training_clock, write_grid
from gan_jax import compilation_cache, provenance
from gan_jax.evaluation.evaluate import evaluate_workdir
from gan_jax.metric_writer import read_metrics
from gan_jax.train import train_and_evaluate

FLAGS = flags.FLAGS
CONFIGS = {"small": dcgan_emoji_small, "full": dcgan_emoji}
NUM_SAMPLES = 328  # the whole test split
GRID = "experiments/results/figures/emoji_{size}.png"


def define_flags():
  """Flags for the command line only, so that tests can import this module."""
  flags.DEFINE_enum("size", "small", list(CONFIGS), "Which emoji config.")
  flags.DEFINE_string("workdir", None, "The run's workdir (default runs/dcgan_emoji_SIZE; "
                      "trained if missing or unfinished).")
  flags.DEFINE_string("output", f"{report.EXPERIMENTS}/emoji.json", "Results JSON.")


def main(argv):
  del argv
  compilation_cache.enable()
  module = CONFIGS[FLAGS.size]
  name = module.__name__.rpartition(".")[2]
  config = module.get_config()
  workdir = FLAGS.workdir or f"runs/{name}"
  trained = train_and_evaluate(config, workdir)  # resumes; returns at once when finished
  if trained["step"] < config.num_train_steps:
    sys.exit(f"{workdir} stopped at step {trained['step']} of {config.num_train_steps}; "
             "run the command again to finish it")
  row = evaluate_workdir(workdir, num_samples=NUM_SAMPLES, seed=0)
  clock = training_clock(read_metrics(workdir))
  row.update(config=f"configs/{name}.py",
             num_train_steps=config.num_train_steps,
             training_minutes=clock[max(clock)] / 60, cpu=provenance.cpu_features(),
             grid=GRID.format(size=FLAGS.size))
  write_grid(workdir, row["grid"])
  results = report.load(FLAGS.output) if os.path.exists(FLAGS.output) else {}
  results[FLAGS.size] = row
  summary.write_json(FLAGS.output, results)
  print(report.emoji_table(results))


if __name__ == "__main__":
  define_flags()
  app.run(main)
