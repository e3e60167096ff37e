"""Write generated samples or pictures from a trained run:

    python -m gan_jax.sample --workdir=DIR --output=FILE [--kind=raw] [--num=N] [--step=S]

Kinds:
  raw            N samples as a float32 .npy in the data's own value range and
                 layout: (N, 2) for 2-D data, (N, H, W, C) for images.
  grid           a PNG grid of N samples.
  interpolation  a PNG: each row walks the latent space (slerp) between two
                 random latents in `--steps` steps.
  classes        conditional models: a PNG with one row per class.
  codes          models with a latent code (InfoGAN, latent_code.categories):
                 a PNG with one row per code.
Autoencoders and VAEs (decoder means, i.e. Bernoulli probabilities):
  reconstructions  test images (odd columns) beside their reconstructions.
  test_interpolation  rows decoding the straight path between the codes of
                 two test images (endpoints: the reconstructions).
  manifold       2-D latents only: decoded grid over the prior's central
                 quantiles (Kingma & Welling 2014, figure 4).
EMA weights are used where they exist. Conditional models take `--labels`
(default: cycling 0..K-1); `raw` writes them beside the samples as
`<output>.labels.npy`.
"""

from __future__ import annotations

import os

import jax
import numpy as np
from absl import flags

from gan_jax import cli, plots, seeds, storage
from gan_jax.evaluation.evaluate import cycling_labels, generate, make_sampler
from gan_jax.latents import interpolation_latents
from gan_jax.registry import ConfigError
from gan_jax.sharding import make_mesh

FLAGS = flags.FLAGS
KINDS = ("raw", "grid", "interpolation", "classes", "codes", "reconstructions",
         "test_interpolation", "manifold")
AUTOENCODER_KINDS = ("reconstructions", "test_interpolation", "manifold")


def define_flags(flag_values: flags.FlagValues = FLAGS):
  define = dict(flag_values=flag_values)
  flags.DEFINE_string("workdir", None, "Training workdir.", required=True, **define)
  flags.DEFINE_string("output", None, "File to write (.npy for raw, else .png).",
                      required=True, **define)
  flags.DEFINE_enum("kind", "raw", KINDS, "What to write.", **define)
  flags.DEFINE_integer("num", 64, "Samples (raw, grid) or rows (interpolation).",
                       lower_bound=1, **define)
  flags.DEFINE_integer("steps", 10, "Interpolation steps per row (both ends included).",
                       lower_bound=2, **define)
  flags.DEFINE_integer("step", None, "Checkpoint step (default: latest).", **define)
  flags.DEFINE_integer("seed", 0, "Sampling seed.", **define)
  flags.DEFINE_integer("seed_index", 0, "Which seed of a run of several (config "
                       "num_seeds): 0 .. num_seeds-1.", **define)
  flags.DEFINE_list("labels", None, "Class labels for conditional models.", **define)


def output_suffix(kind: str) -> str:
  return ".npy" if kind == "raw" else ".png"


def check_output(kind: str, output: str) -> None:
  """The file written is exactly `output`, so its suffix must be the kind's."""
  suffix = output_suffix(kind)
  if not output.endswith(suffix):
    raise ConfigError(f"--output={output}: --kind={kind} writes a {suffix} file; name it "
                      f"{os.path.splitext(output)[0]}{suffix}.")


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


def _autoencoder_pictures(family, state, spec, kind, num, seed, steps, test_images):
  if not hasattr(family, "reconstruct"):
    raise ConfigError(f"--kind={kind} needs an autoencoder or VAE run.")
  rng = np.random.default_rng(seed)
  if kind == "reconstructions":
    inputs = test_images[rng.choice(len(test_images), num, replace=False)]
    outputs = np.asarray(jax.jit(family.reconstruct)(state, inputs))
    pairs = np.stack([inputs, outputs], axis=1).reshape(2 * num, *inputs.shape[1:])
    cols = 2 * int(np.ceil(np.sqrt(num / 2)))
    return pairs, cols
  if kind == "test_interpolation":
    ends = test_images[rng.choice(len(test_images), 2 * num, replace=False)]
    codes = np.asarray(jax.jit(family.encode)(state, ends))
    path = interpolation_latents(codes[:num], codes[num:], steps, spherical=False)
    latents = np.swapaxes(path, 0, 1).reshape(num * steps, -1)
    return np.asarray(jax.jit(family.decode)(state, latents)), steps
  if family.latent_dim != 2:
    raise ConfigError(f"--kind=manifold needs a 2-D latent; this model's is "
                      f"{family.latent_dim}-D.")
  from scipy.stats import norm  # the prior's quantiles
  side = int(np.ceil(np.sqrt(num)))
  values = norm.ppf(np.linspace(0.05, 0.95, side))
  latents = np.stack(np.meshgrid(values, values[::-1]), axis=-1).reshape(-1, 2)
  return np.asarray(jax.jit(family.decode)(state, latents.astype(np.float32))), side


def _save_npy(path, array: np.ndarray) -> None:
  with path.open("wb") as f:
    np.save(f, array)


def write_samples(family, state, spec, *, kind: str, output: str, num: int, seed: int,
                  steps: int = 10, labels=None, test_images=None) -> np.ndarray:
  """Writes `kind` to `output`; returns the samples drawn."""
  check_output(kind, output)
  if num < 1 or steps < 2:
    raise ConfigError(f"Need num >= 1 and steps >= 2 (got num={num}, steps={steps}).")
  output_path = storage.resolve(output, "--output")
  output_path.parent.mkdir(parents=True, exist_ok=True)
  labels_path = output_path.parent / f"{os.path.splitext(output_path.name)[0]}.labels.npy"
  num_classes = family.num_classes
  mesh = make_mesh()
  sample_fn = make_sampler(family, mesh)
  if kind == "raw":
    labels = parse_labels(labels, num, num_classes)
    samples = generate(family, state, num, seed, sample_fn, labels, mesh=mesh)
    _save_npy(output_path, samples)
    if labels is not None:
      _save_npy(labels_path, labels)
    return samples
  if len(spec.example_shape) != 3:
    raise ConfigError(f"--kind={kind} draws images; dataset '{spec.name}' has examples "
                      f"of shape {spec.example_shape}. Use --kind=raw.")
  row_labels = None
  if kind in AUTOENCODER_KINDS:
    samples, cols = _autoencoder_pictures(family, state, spec, kind, num, seed, steps,
                                          test_images)
  elif kind == "grid":
    labels = parse_labels(labels, num, num_classes)
    samples = generate(family, state, num, seed, sample_fn, labels, mesh=mesh)
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
  elif kind == "codes":
    categories = getattr(family, "code_categories", 0)
    if not categories:
      raise ConfigError("--kind=codes needs a model with a latent code "
                        "(latent_code.categories > 0).")
    latents = jax.random.normal(jax.random.PRNGKey(seed), (categories * num,
                                                           family.latent_dim))
    latents = family.with_codes(latents, np.repeat(np.arange(categories), num))
    samples = np.asarray(sample_fn(state, latents, None))
    cols = num
    row_labels = [str(k) for k in range(categories)]
  else:
    raise ConfigError(f"Unknown --kind '{kind}'. Valid kinds: {', '.join(KINDS)}.")
  image = plots.image_grid(samples, len(samples) // cols + bool(len(samples) % cols), cols,
                           value_range=spec.value_range, row_labels=row_labels)
  plots.save_png(output_path, image)
  if labels is not None:
    _save_npy(labels_path, labels)
  return samples


def main(argv):
  del argv
  from gan_jax.run import restore_for_inference, resolved_dataset

  check_output(FLAGS.kind, FLAGS.output)
  storage.resolve(FLAGS.output, "--output")  # an unreachable URI fails before the restore
  config, family, state = restore_for_inference(FLAGS.workdir, FLAGS.step)
  state = seeds.one_seed(config, state, FLAGS.seed_index)
  spec = resolved_dataset(config)
  test_images = None
  if FLAGS.kind in AUTOENCODER_KINDS[:2]:
    from gan_jax.data import pipeline as pipeline_lib
    from gan_jax.run import data_dir_for
    test_images = pipeline_lib.load_eval_split(spec, "test", data_dir_for(config))["x"]
  samples = write_samples(family, state, spec, kind=FLAGS.kind, output=FLAGS.output,
                          num=FLAGS.num, seed=FLAGS.seed, steps=FLAGS.steps,
                          labels=FLAGS.labels, test_images=test_images)
  print(f"Wrote {FLAGS.kind} ({samples.shape} samples) from step {int(state.step)} "
        f"to {FLAGS.output}")


if __name__ == "__main__":
  define_flags()
  cli.run(main)
