"""Write raw generated samples:

    python -m gan_jax.sample --workdir=DIR --num=N --output=FILE.npy [--step=S]

The array is float32 in the data's own value range and layout: (N, 2) for 2-D
data, (N, H, W, C) for images. EMA weights are used where they exist.
"""

from __future__ import annotations

import os

import numpy as np
from absl import app, flags

from gan_jax.evaluate import generate

FLAGS = flags.FLAGS


def define_flags():
  flags.DEFINE_string("workdir", None, "Training workdir.", required=True)
  flags.DEFINE_string("output", None, ".npy file to write.", required=True)
  flags.DEFINE_integer("num", 1000, "Number of samples.")
  flags.DEFINE_integer("step", None, "Checkpoint step (default: latest).")
  flags.DEFINE_integer("seed", 0, "Sampling seed.")


def main(argv):
  del argv
  from gan_jax.train import restore_for_inference

  _, family, state = restore_for_inference(FLAGS.workdir, FLAGS.step)
  samples = generate(family, state, FLAGS.num, FLAGS.seed)
  os.makedirs(os.path.dirname(os.path.abspath(FLAGS.output)), exist_ok=True)
  np.save(FLAGS.output, samples)
  print(f"Wrote {samples.shape} float32 samples from step {int(state.step)} to {FLAGS.output}")


if __name__ == "__main__":
  define_flags()
  app.run(main)
