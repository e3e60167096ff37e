"""Datasets, registered by name, prepared offline with TFDS and read back from
array_record files through TFDS data sources (no TensorFlow needed to read).

`dataset_spec(config)` is the dataset a config asks for: for image datasets
at `config.dataset.resolution` (0: native) with the registered preprocessing
`config.dataset.preprocessing` (default "symmetric").
"""

from __future__ import annotations

import dataclasses
import os
from typing import Callable, Optional

import numpy as np

from gan_jax.data import images
from gan_jax.data.images import PREPROCESSORS
from gan_jax.errors import UserError
from gan_jax.registry import ConfigError, Registry

DATA_DIR_ENV = "GAN_JAX_DATA_DIR"
DEFAULT_RESOLUTION = 0
DEFAULT_PREPROCESSING = "symmetric"
# A 178 x 178 square (CelebA's full width) around the centre of its 218 x 178
# images, resized to 64 x 64.
CELEBA_CROP = 178
CELEBA_SIZE = 64


def default_data_dir() -> str:
  """$GAN_JAX_DATA_DIR, else TFDS's own default, ~/tensorflow_datasets."""
  return os.environ.get(DATA_DIR_ENV) or os.path.expanduser("~/tensorflow_datasets")


@dataclasses.dataclass(frozen=True)
class Mixture:
  """Mode layout of a synthetic mixture, for mode-coverage metrics."""

  means: np.ndarray
  std: float


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
  name: str
  builder: Callable[[str], object]  # data_dir -> a TFDS builder
  example_shape: tuple[int, ...]
  # Vectorised, deterministic preprocessing of a batch of raw records (each
  # row also carries its record "index" and stream "position").
  preprocess: Callable[[dict], dict]
  # Synthetic datasets are generated on the spot when missing.
  auto_prepare: bool = False
  mixture: Optional[Mixture] = None
  # Images: records hold uint8 "image" and "label"; `dataset_spec` sets the
  # resolution and preprocessing. num_classes 0 means unlabelled (label 0).
  is_image: bool = False
  value_range: tuple[float, float] = (-1.0, 1.0)  # of preprocessed examples
  num_classes: int = 0
  # Preprocessing of evaluation splits, where it differs from training's.
  eval_preprocess: Optional[Callable[[dict], dict]] = None
  # Turns a chunk of decoded records into the arrays held in memory (default:
  # stack every feature).
  collate: Optional[Callable[[list], dict]] = None
  # Preparation: the raw files' directory when not given (--manual_dir), a
  # function that fills a manual dir when it lacks them, and whether TFDS's
  # builder needs TensorFlow to write the records.
  manual_dir: Optional[str] = None
  fetch: Optional[Callable[[str], None]] = None
  needs_tensorflow: bool = False
  prepare_hint: str = ""
  # Datasets this one is built from; preparing it prepares them first.
  requires: tuple[str, ...] = ()


DATASETS: Registry[DatasetSpec] = Registry("dataset")


class DataNotPreparedError(UserError, FileNotFoundError):
  """The dataset has not been prepared in the data directory."""


class DataDamagedError(DataNotPreparedError):
  """The prepared dataset has missing, truncated or altered files."""


def prepare_command(name: str, data_dir: str, force: bool = False) -> str:
  return (f"python -m gan_jax.prepare --dataset={name} --data_dir={data_dir}"
          + (" --force" if force else ""))


def dataset_spec(config) -> DatasetSpec:
  """The spec of `config.dataset`, at the resolution and with the preprocessing
  it asks for; `example_shape` and `preprocess` are what the run uses."""
  spec = DATASETS.get(config.dataset.name)
  resolution = config.dataset.get("resolution", DEFAULT_RESOLUTION)
  preprocessing = config.dataset.get("preprocessing", DEFAULT_PREPROCESSING)
  PREPROCESSORS.get(preprocessing)  # an unknown name fails here, with the valid ones
  if spec.is_image:
    return images.configure(spec, resolution, preprocessing, config.seed)
  if resolution != DEFAULT_RESOLUTION or preprocessing != DEFAULT_PREPROCESSING:
    raise ConfigError(
        f"Dataset '{spec.name}' is not an image dataset: dataset.resolution and "
        f"dataset.preprocessing must stay {DEFAULT_RESOLUTION} and "
        f"'{DEFAULT_PREPROCESSING}' (got {resolution} and '{preprocessing}').")
  return spec


def _as_float32(batch: dict) -> dict:
  return {"x": np.asarray(batch["x"], np.float32)}


def _register_synthetic():
  from gan_jax.data import synthetic

  for name, cls, mixture in (
      ("ring8", synthetic.Ring8, Mixture(synthetic.ring8_means(), synthetic.Ring8.STD)),
      ("grid25", synthetic.Grid25, Mixture(synthetic.grid25_means(), synthetic.Grid25.STD)),
      ("normal1d", synthetic.Normal1d, None),
  ):
    shape = (1,) if mixture is None else (2,)
    DATASETS.register(name)(DatasetSpec(
        name=name, builder=lambda d, cls=cls: cls(data_dir=d),
        example_shape=shape, preprocess=_as_float32, auto_prepare=True, mixture=mixture))


def _register_images():
  import tensorflow_datasets as tfds

  from gan_jax.data import cifar10, emoji, fashion_mnist, mnist, stacked_mnist, synthetic

  needs_tf = "Preparing it needs TensorFlow: pip install -e '.[prepare]'."
  for name, shape, extra in (
      ("blobs", (28, 28, 1), dict(
          builder=lambda d: synthetic.Blobs(data_dir=d), auto_prepare=True)),
      ("mnist", (28, 28, 1), dict(fetch=mnist.fetch, needs_tensorflow=True,
                                  prepare_hint=needs_tf)),
      ("fashion_mnist", (28, 28, 1), dict(
          builder=lambda d: fashion_mnist.FashionMnistIdx(data_dir=d),
          manual_dir=fashion_mnist.DEFAULT_DIR,
          prepare_hint=f"It reads the IDX files in {fashion_mnist.DEFAULT_DIR}. "
                       + fashion_mnist.INSTALL_HINT)),
      ("stacked_mnist", (28, 28, 3), dict(
          builder=lambda d: stacked_mnist.StackedMnist(data_dir=d),
          num_classes=stacked_mnist.NUM_MODES, requires=("mnist",),
          prepare_hint="It is built from the prepared mnist, which that command "
                       "prepares first. " + needs_tf)),
      ("cifar10", (32, 32, 3), dict(builder=lambda d: cifar10.Cifar10Python(data_dir=d),
                                    prepare_hint=cifar10.SOURCE_HINT)),
      ("emoji", (emoji.SIZE, emoji.SIZE, 3), dict(
          builder=lambda d: emoji.EmojiGoogle(data_dir=d), fetch=emoji.fetch,
          num_classes=len(emoji.CATEGORIES),
          prepare_hint=f"It fetches {emoji.PACKAGE} with `npm pack` (npm must be on PATH).")),
      ("celeb_a", (CELEBA_SIZE, CELEBA_SIZE, 3), dict(
          num_classes=0, collate=images.center_crop_and_resize(CELEBA_CROP, CELEBA_SIZE),
          needs_tensorflow=True, prepare_hint=needs_tf)),
  ):
    fields = dict(name=name,
                  builder=lambda d, name=name: tfds.builder(name, data_dir=d),
                  example_shape=shape, is_image=True, num_classes=10,
                  collate=images.collate_labelled)
    fields.update(extra)
    spec = images.configure(DatasetSpec(preprocess=None, **fields), DEFAULT_RESOLUTION,
                            DEFAULT_PREPROCESSING, seed=0)
    DATASETS.register(name)(spec)


_register_synthetic()
_register_images()
