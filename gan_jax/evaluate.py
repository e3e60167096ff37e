"""Evaluation: sample a trained model and score the samples.

    python -m gan_jax.evaluate --workdir=DIR --output=FILE.json [--step=N]

loads a checkpoint (default: the latest), draws `--num_samples` samples from a
fixed seed with EMA weights where they exist, and writes the step and every
metric that fits the dataset as JSON.
"""

from __future__ import annotations

import json
import os
from typing import Optional

import jax
import numpy as np
from absl import app, flags

from gan_jax import metrics as metrics_lib
from gan_jax.data import DATASETS, DatasetSpec

SAMPLE_BATCH = 2500


def generate(family, state, num_samples: int, seed: int, sample_fn=None) -> np.ndarray:
  """`num_samples` samples as a float32 NumPy array in the data's layout.

  Pass a jitted `family.sample` as `sample_fn` to reuse its compilation.
  """
  key = jax.random.PRNGKey(seed)
  latents = jax.random.normal(key, (num_samples, family.latent_dim))
  sample = sample_fn or jax.jit(family.sample)
  parts = [np.asarray(sample(state, latents[i:i + SAMPLE_BATCH]))
           for i in range(0, num_samples, SAMPLE_BATCH)]
  return np.concatenate(parts).astype(np.float32)


def score_samples(spec: DatasetSpec, samples: np.ndarray) -> dict:
  """Every metric that fits the dataset, for one batch of samples."""
  results = {}
  if spec.mixture is not None:
    results.update(metrics_lib.mode_coverage(samples, spec.mixture.means, spec.mixture.std))
  if spec.example_shape == (1,):
    results.update(metrics_lib.moments(samples))
  return results


def evaluate_workdir(workdir: str, *, step: Optional[int] = None, num_samples: int = 2500,
                     seed: int = 0) -> dict:
  from gan_jax.train import restore_for_inference

  config, family, state = restore_for_inference(workdir, step)
  spec = DATASETS.get(config.dataset.name)
  samples = generate(family, state, num_samples, seed)
  return {"step": int(state.step), "num_samples": num_samples, "seed": seed,
          "dataset": spec.name, **score_samples(spec, samples)}


FLAGS = flags.FLAGS


def define_flags():
  flags.DEFINE_string("workdir", None, "Training workdir.", required=True)
  flags.DEFINE_string("output", None, "JSON file to write.", required=True)
  flags.DEFINE_integer("step", None, "Checkpoint step (default: latest).")
  flags.DEFINE_integer("num_samples", 2500, "Samples to draw.")
  flags.DEFINE_integer("seed", 0, "Sampling seed.")


def main(argv):
  del argv
  results = evaluate_workdir(FLAGS.workdir, step=FLAGS.step, num_samples=FLAGS.num_samples,
                             seed=FLAGS.seed)
  os.makedirs(os.path.dirname(os.path.abspath(FLAGS.output)), exist_ok=True)
  with open(FLAGS.output, "w") as f:
    json.dump(results, f, indent=2)
  print(json.dumps(results, indent=2))


if __name__ == "__main__":
  define_flags()
  app.run(main)
