"""DCGAN (the main job's recipe and the classic one), class-conditional DCGAN
and VAE on MNIST side by side, with the same classifier and Inception metrics:

    python -m experiments.gan_vs_vae [--gan_workdir=runs/dcgan_mnist]
        [--classic_workdir=runs/dcgan_mnist_classic] [--cgan_workdir=runs/cdcgan_mnist]
        [--vae_workdir=runs/vae_mnist] [--num_samples=10000] [--only=ROW,...]

Trains each model with its default config unless its workdir already holds
a finished run, evaluates each with `gan_jax.evaluate` (same sample count,
same seed, the same reference classifier and real test images) and writes
experiments/results/gan_vs_vae.json plus a Markdown table; `--only` redoes
the named rows and keeps the file's others. The VAE's samples
are its decoder means (Bernoulli probabilities) at prior latents; the VAE
row adds its test negative ELBO and IWAE bound (k = 100) in nats.
"""

from __future__ import annotations

import json
import os
import sys

from absl import app, flags

from configs import cdcgan_mnist, dcgan_mnist, dcgan_mnist_classic, vae_mnist
from experiments import report, summary
from gan_jax import compilation_cache
from gan_jax.evaluation.evaluate import evaluate_workdir
from gan_jax.train import train_and_evaluate

FLAGS = flags.FLAGS


def define_flags():
  """Flags for the command line only, so that tests can import this module."""
  flags.DEFINE_string("gan_workdir", "runs/dcgan_mnist", "DCGAN run (trained if missing).")
  flags.DEFINE_string("classic_workdir", "runs/dcgan_mnist_classic",
                      "Classic DCGAN run (trained if missing).")
  flags.DEFINE_string("cgan_workdir", "runs/cdcgan_mnist", "cDCGAN run (trained if missing).")
  flags.DEFINE_string("vae_workdir", "runs/vae_mnist", "VAE run (trained if missing).")
  flags.DEFINE_integer("num_samples", 10_000, "Generated samples per model.")
  flags.DEFINE_integer("inception_samples", 10_000,
                       "Inception FID/KID on the first this many of them (about 0.1 s each here).")
  flags.DEFINE_integer("seed", 0, "Sampling seed.")
  flags.DEFINE_string("output", "experiments/results/gan_vs_vae.json", "Results JSON.")
  flags.DEFINE_list("only", None, "Rows to redo (default: all): "
                    + ", ".join(f"'{name}'" for name in ROWS))


ROWS = {"DCGAN (dcgan_mnist)": (dcgan_mnist, "gan_workdir"),
        "DCGAN classic (dcgan_mnist_classic)": (dcgan_mnist_classic, "classic_workdir"),
        "cDCGAN (cdcgan_mnist)": (cdcgan_mnist, "cgan_workdir"),
        "VAE (vae_mnist)": (vae_mnist, "vae_workdir")}


def main(argv):
  del argv
  compilation_cache.enable()
  unknown = sorted(set(FLAGS.only or []) - set(ROWS))
  if unknown:
    raise app.UsageError(f"--only: unknown rows {unknown}; valid: {', '.join(ROWS)}.")
  kept = {}
  if FLAGS.only and os.path.exists(FLAGS.output):
    with open(FLAGS.output) as f:
      kept = json.load(f)
  rows = {}
  for name, (module, workdir_flag) in ROWS.items():
    if FLAGS.only and name not in FLAGS.only:
      if name in kept:
        rows[name] = kept[name]
      continue
    workdir = getattr(FLAGS, workdir_flag)
    config = module.get_config()
    trained = train_and_evaluate(config, workdir)  # resumes; returns at once when finished
    if trained["step"] < config.num_train_steps:
      sys.exit(f"{workdir} stopped at step {trained['step']} of {config.num_train_steps}; "
               "run the command again to finish it")
    rows[name] = evaluate_workdir(workdir, num_samples=FLAGS.num_samples, seed=FLAGS.seed,
                                  inception_samples=FLAGS.inception_samples)
  summary.write_json(FLAGS.output, rows)
  print(report.gan_vs_vae_table(rows))


if __name__ == "__main__":
  define_flags()
  app.run(main)
