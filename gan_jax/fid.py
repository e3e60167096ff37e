"""Standard FID, KID and precision/recall between two image sets, in the
manner of pytorch-fid:

    python -m gan_jax.fid A B [--output=F.json] [--value_range=LOW,HIGH]
    python -m gan_jax.fid --save_stats A STATS.npz

A and B are each an image array (.npy, or .npz: its `images`, `x` or only
array), shaped (N, H, W[, C]); a folder of PNG/JPEG files of one size; a
prepared dataset split such as `mnist:test`; or saved statistics (.npz with
`mu` and `sigma`). Grey images are replicated to three channels. The value
range is uint8 0..255 for integer arrays and files; for floats it is
detected ([-1, 1] when any value is negative, else [0, 1] when none exceeds
1, else 0..255) unless `--value_range` gives it.

Prints and writes FID, KID with its standard error and precision/recall
(k = 3) on the FID Inception's pool3 features (see gan_jax.evaluation.inception), with
the counts, the weights' SHA-256 and the resize. Statistics files hold the
features too, so KID and precision/recall work from them; a file with only
`mu` and `sigma` gives FID alone. Dataset splits are cached in the data dir.
`--save_stats A OUT.npz` writes A's statistics instead.
"""

from __future__ import annotations

import json
import os
import time
from typing import Optional

import numpy as np
from absl import flags
from etils import epath

from gan_jax import cli, storage
from gan_jax.errors import UserError
from gan_jax.evaluation import inception, inception_metrics

FLAGS = flags.FLAGS


def define_flags():
  """The command line's flags; defined only when run, so importing the module
  defines no global flags."""
  flags.DEFINE_string("output", None, "JSON file to write the results to.")
  flags.DEFINE_bool("save_stats", False, "Write the first input's statistics to the second "
                    "path (.npz) instead of comparing.")
  flags.DEFINE_string("value_range", None, "LOW,HIGH of the image values (default: detected).")
  flags.DEFINE_string("data_dir", None, "Data dir of prepared datasets and weights (default: "
                      "$GAN_JAX_DATA_DIR or ~/tensorflow_datasets).")
  flags.DEFINE_string("inception_weights", None, "Your own copy of the weights: an .npz in "
                      "gan_jax's layout or jax-fid's pickle (default: the prepared ones).")
  flags.DEFINE_integer("seed", 0, "Seed of the KID subsets.")


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def detect_value_range(images: np.ndarray) -> tuple[float, float]:
  if np.issubdtype(images.dtype, np.integer):
    return (0.0, 255.0)
  low, high = float(np.min(images)), float(np.max(images))
  if low < 0:
    return (-1.0, 1.0)
  return (0.0, 1.0) if high <= 1.0 else (0.0, 255.0)


def parse_value_range(text: Optional[str]) -> Optional[tuple[float, float]]:
  if text is None:
    return None
  try:
    low, high = (float(part) for part in text.split(","))
  except ValueError:
    raise UserError(f"--value_range must be LOW,HIGH, got '{text}'.") from None
  if not high > low:
    raise UserError(f"--value_range: HIGH must exceed LOW, got '{text}'.")
  return (low, high)


def read_array(path: str) -> np.ndarray:
  with epath.Path(path).open("rb") as f:
    if str(path).endswith(".npy"):
      return np.load(f)
    with np.load(f) as stored:
      for key in ("images", "x", "image"):
        if key in stored:
          return stored[key]
      if len(stored.files) != 1:
        raise UserError(f"{path}: which array holds the images? It has {stored.files}; "
                        "name it 'images'.")
      return stored[stored.files[0]]


def read_folder(path: str) -> np.ndarray:
  from PIL import Image

  folder = epath.Path(path)
  names = sorted(p.name for p in folder.iterdir() if p.name.lower().endswith(IMAGE_SUFFIXES))
  if not names:
    raise UserError(f"{path} holds no PNG or JPEG files.")
  images = []
  for name in names:
    with (folder / name).open("rb") as f, Image.open(f) as image:
      images.append(np.asarray(image.convert("L" if image.mode in ("L", "I", "1") else "RGB")))
  shapes = {image.shape for image in images}
  if len(shapes) != 1:
    raise UserError(f"{path}: the images differ in size ({sorted(shapes)[:3]}...); "
                    "resize them to one size first.")
  return np.stack(images)


def is_split_name(source: str) -> bool:
  return ":" in source and not storage.is_uri(source) and not epath.Path(source).exists()


def feature_set(source: str, data_dir: str, extractor_fn,
                value_range: Optional[tuple[float, float]]):
  """(FeatureSet, description of the input) of one command-line input."""
  if is_split_name(source):
    from gan_jax.data import DATASETS, DataNotPreparedError
    from gan_jax.registry import ConfigError

    dataset, split = source.split(":", 1)
    try:
      DATASETS.get(dataset)
      return (inception_metrics.split_features(extractor_fn(), dataset, split, data_dir),
              {"dataset": dataset, "split": split})
    except (ConfigError, DataNotPreparedError) as error:
      raise UserError(str(error).replace("\n", " ")) from None
    except (KeyError, ValueError) as error:
      raise UserError(f"{source}: {error}") from None
  path = storage.resolve(source, "input")
  if not path.exists():
    raise UserError(f"No such file, folder or dataset split: {source}")
  if path.is_dir():
    images = read_folder(path)
  elif source.endswith(".npz") and inception_metrics.is_stats_file(path):
    return inception_metrics.load_stats(path), {"stats": source}
  elif source.endswith((".npy", ".npz")):
    images = read_array(path)
  else:
    raise UserError(f"{source}: expected a .npy/.npz file, a folder of images or "
                    "DATASET:SPLIT.")
  if images.ndim not in (3, 4) or (images.ndim == 4 and images.shape[-1] not in (1, 3)):
    raise UserError(f"{source}: images must be (N, H, W) or (N, H, W, 1 or 3); got "
                    f"{images.shape}.")
  chosen = value_range or detect_value_range(images)
  return (inception_metrics.image_features(extractor_fn(), images, chosen),
          {"path": source, "value_range": list(chosen)})


def run(a: str, b: str, *, data_dir: str, value_range: Optional[tuple[float, float]] = None,
        weights_path: Optional[str] = None, save_stats: bool = False, seed: int = 0) -> dict:
  """The command's results for inputs `a` and `b` (see the module docstring)."""

  def extractor():
    return inception.load_extractor(None if weights_path else data_dir, weights_path)

  start = time.perf_counter()
  first, first_info = feature_set(a, data_dir, extractor, value_range)
  if save_stats:
    inception_metrics.save_stats(b, first, source=first_info)
    return {"saved_stats": b, "count": first.count, "weights_sha256": first.weights_sha256,
            "resize": inception.RESIZE, "seconds": time.perf_counter() - start}
  second, second_info = feature_set(b, data_dir, extractor, value_range)
  features_seconds = time.perf_counter() - start
  results = inception_metrics.compare(first, second, seed=seed)
  results.update(a=first_info, b=second_info, features_seconds=features_seconds,
                 seconds=time.perf_counter() - start)
  return results


def main(argv):
  if len(argv) != 3:
    raise UserError("usage: python -m gan_jax.fid A B [--output=F.json] "
                    "(or --save_stats A OUT.npz)")
  from gan_jax.data import default_data_dir

  # Unreachable URIs fail here, before the features are computed.
  output = storage.resolve(FLAGS.output, "--output") if FLAGS.output else None
  if FLAGS.save_stats:
    storage.resolve(argv[2], "statistics file")
  data_dir = os.fspath(storage.resolve(FLAGS.data_dir or default_data_dir(), "data dir"))
  results = run(argv[1], argv[2], data_dir=data_dir,
                value_range=parse_value_range(FLAGS.value_range),
                weights_path=FLAGS.inception_weights, save_stats=FLAGS.save_stats,
                seed=FLAGS.seed)
  text = json.dumps(results, indent=2)
  print(text)
  if FLAGS.output:
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text + "\n")


if __name__ == "__main__":
  define_flags()
  cli.run(main)
