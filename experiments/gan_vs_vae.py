"""DCGAN and VAE on MNIST side by side, with the same classifier metrics:

    python experiments/gan_vs_vae.py [--gan_workdir=runs/dcgan_mnist]
        [--vae_workdir=runs/vae_mnist] [--num_samples=10000]

Trains each model with its default config unless its workdir already holds
a finished run, evaluates both with `gan_jax.evaluate` (same sample count,
same seed, the same reference classifier and real test images) and writes
experiments/results/gan_vs_vae.json plus a Markdown table. The VAE's samples
are its decoder means (Bernoulli probabilities) at prior latents; the VAE
row adds its test negative ELBO and IWAE bound (k = 100) in nats.
"""

from __future__ import annotations

import json
import os
import sys

from absl import app, flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from configs import dcgan_mnist, vae_mnist  # noqa: E402
from gan_jax import compilation_cache  # noqa: E402
from gan_jax.evaluate import evaluate_workdir  # noqa: E402
from gan_jax.train import train_and_evaluate  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("gan_workdir", "runs/dcgan_mnist", "DCGAN run (trained if missing).")
flags.DEFINE_string("vae_workdir", "runs/vae_mnist", "VAE run (trained if missing).")
flags.DEFINE_integer("num_samples", 10_000, "Generated samples per model.")
flags.DEFINE_integer("seed", 0, "Sampling seed.")
flags.DEFINE_string("output", "experiments/results/gan_vs_vae.json", "Results JSON.")

COLUMNS = ("fid", "kid", "precision", "recall", "density", "coverage", "classifier_score")


def table(rows: dict) -> str:
  header = ["model", "step", *COLUMNS, "test −ELBO (nats)", "test IWAE k=100 (nats)"]
  lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
  for name, r in rows.items():
    cells = [name, str(r["step"])] + [f"{r[c]:.4g}" for c in COLUMNS]
    cells += [f"{r['test_negative_elbo']:.2f}" if "test_negative_elbo" in r else "–",
              f"{r['test_iwae_nll']:.2f}" if "test_iwae_nll" in r else "–"]
    lines.append("| " + " | ".join(cells) + " |")
  floor = next(iter(rows.values()))
  cells = ["real train vs test (floor)", "–"] + [f"{floor['floor/' + c]:.4g}"
                                                  if "floor/" + c in floor else "–"
                                                  for c in COLUMNS] + ["–", "–"]
  lines.append("| " + " | ".join(cells) + " |")
  return "\n".join(lines)


def main(argv):
  del argv
  compilation_cache.enable()
  rows = {}
  for name, module, workdir in (("DCGAN (dcgan_mnist)", dcgan_mnist, FLAGS.gan_workdir),
                                ("VAE (vae_mnist)", vae_mnist, FLAGS.vae_workdir)):
    config = module.get_config()
    train_and_evaluate(config, workdir)  # resumes; returns at once when finished
    rows[name] = evaluate_workdir(workdir, num_samples=FLAGS.num_samples, seed=FLAGS.seed)
  os.makedirs(os.path.dirname(os.path.abspath(FLAGS.output)), exist_ok=True)
  with open(FLAGS.output, "w") as f:
    json.dump(rows, f, indent=2)
  print(table(rows))


if __name__ == "__main__":
  app.run(main)
