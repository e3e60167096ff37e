"""Write generated samples or pictures from a trained run:

    python -m gan_jax.sample --workdir=DIR --output=FILE [--kind=raw] [--num=N] [--step=S]

Kinds:
  raw            N samples as a float32 .npy in the data's own value range and
                 layout: (N, 2) for 2-D data, (N, H, W, C) for images.
  grid           a PNG grid of N samples.
  interpolation  a PNG: each row walks the latent space (slerp) between two
                 random latents in `--steps` steps.
  classes        conditional models: a PNG with one row per class.
EMA weights are used where they exist. Conditional models take `--labels`
(default: cycling 0..K-1); `raw` writes them beside the samples as
`<output>.labels.npy`.
"""

from __future__ import annotations

import os

import jax
import numpy as np
from absl import app, flags

from gan_jax import plots
from gan_jax.evaluate import cycling_labels, generate
from gan_jax.latents import interpolation_latents
from gan_jax.registry import ConfigError

FLAGS = flags.FLAGS
KINDS = ("raw", "grid", "interpolation", "classes")


def define_flags():
  flags.DEFINE_string("workdir", None, "Training workdir.", required=True)
  flags.DEFINE_string("output", None, "File to write (.npy for raw, else .png).",
                      required=True)
  flags.DEFINE_enum("kind", "raw", KINDS, "What to write.")
  flags.DEFINE_integer("num", 64, "Samples (raw, grid) or rows (interpolation).")
  flags.DEFINE_integer("steps", 10, "Interpolation steps per row.")
  flags.DEFINE_integer("step", None, "Checkpoint step (default: latest).")
  flags.DEFINE_integer("seed", 0, "Sampling seed.")
  flags.DEFINE_list("labels", None, "Class labels for conditional models.")


def parse_labels(values, num: int, num_classes: int):
  """`--labels` as an int32 array of length `num` (repeated cyclically)."""
  if not num_classes:
    if values:
      raise ConfigError("--labels was given, but this model is not conditional.")
    return None
  if not values:
    return cycling_labels(num, num_classes)
  labels = np.asarray([int(v) for v in values], np.int32)
  bad = labels[(labels < 0) | (labels >= num_classes)]
  if bad.size:
    raise ConfigError(f"Labels {sorted(set(bad.tolist()))} are outside 0..{num_classes - 1}.")
  return np.resize(labels, num)


def write_samples(family, state, spec, *, kind: str, output: str, num: int, seed: int,
                  steps: int = 10, labels=None) -> np.ndarray:
  """Writes `kind` to `output`; returns the samples drawn."""
  os.makedirs(os.path.dirname(os.path.abspath(output)) or ".", exist_ok=True)
  num_classes = getattr(family, "num_classes", 0)
  sample_fn = jax.jit(family.sample)
  if kind == "raw":
    labels = parse_labels(labels, num, num_classes)
    samples = generate(family, state, num, seed, sample_fn, labels)
    np.save(output, samples)
    if labels is not None:
      np.save(f"{os.path.splitext(output)[0]}.labels.npy", labels)
    return samples
  if len(spec.example_shape) != 3:
    raise ConfigError(f"--kind={kind} draws images; dataset '{spec.name}' has examples "
                      f"of shape {spec.example_shape}. Use --kind=raw.")
  row_labels = None
  if kind == "grid":
    labels = parse_labels(labels, num, num_classes)
    samples = generate(family, state, num, seed, sample_fn, labels)
    cols = int(np.ceil(np.sqrt(num)))
  elif kind == "interpolation":
    key_start, key_end = jax.random.split(jax.random.PRNGKey(seed))
    z_start = np.asarray(jax.random.normal(key_start, (num, family.latent_dim)))
    z_end = np.asarray(jax.random.normal(key_end, (num, family.latent_dim)))
    path = interpolation_latents(z_start, z_end, steps)  # (steps, rows, latent)
    latents = np.swapaxes(path, 0, 1).reshape(num * steps, family.latent_dim)
    row_labels_array = parse_labels(labels, num, num_classes)
    labels = None if row_labels_array is None else np.repeat(row_labels_array, steps)
    samples = np.asarray(sample_fn(state, latents, labels))
    cols = steps
  elif kind == "classes":
    if not num_classes:
      raise ConfigError("--kind=classes needs a conditional model (num_classes > 0).")
    latents = jax.random.normal(jax.random.PRNGKey(seed), (num_classes * num,
                                                           family.latent_dim))
    labels = np.repeat(np.arange(num_classes, dtype=np.int32), num)
    samples = np.asarray(sample_fn(state, latents, labels))
    cols = num
    row_labels = [str(k) for k in range(num_classes)]
  else:
    raise ConfigError(f"Unknown --kind '{kind}'. Valid kinds: {', '.join(KINDS)}.")
  image = plots.image_grid(samples, len(samples) // cols + bool(len(samples) % cols), cols,
                           value_range=spec.value_range, row_labels=row_labels)
  plots.save_png(output, image)
  if labels is not None:
    np.save(f"{os.path.splitext(output)[0]}.labels.npy", labels)
  return samples


def main(argv):
  del argv
  from gan_jax.train import restore_for_inference, resolved_dataset

  config, family, state = restore_for_inference(FLAGS.workdir, FLAGS.step)
  samples = write_samples(family, state, resolved_dataset(config), kind=FLAGS.kind,
                          output=FLAGS.output, num=FLAGS.num, seed=FLAGS.seed,
                          steps=FLAGS.steps, labels=FLAGS.labels)
  print(f"Wrote {FLAGS.kind} ({samples.shape} samples) from step {int(state.step)} "
        f"to {FLAGS.output}")


if __name__ == "__main__":
  define_flags()
  app.run(main)
