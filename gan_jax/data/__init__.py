"""Datasets, registered by name, prepared offline with TFDS and read back from
array_record files through `tfds.data_source` (no TensorFlow needed to read).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Callable, Optional

import numpy as np

from gan_jax.registry import Registry

DATA_DIR_ENV = "GAN_JAX_DATA_DIR"


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
  tfds_name: str
  builder: Callable[[str], object]  # data_dir -> a TFDS builder
  example_shape: tuple[int, ...]
  # Vectorised, deterministic preprocessing of a batch of raw records.
  preprocess: Callable[[dict], dict]
  # Synthetic datasets are generated on the spot when missing.
  auto_prepare: bool = False
  mixture: Optional[Mixture] = None


DATASETS: Registry[DatasetSpec] = Registry("dataset")


class DataNotPreparedError(FileNotFoundError):
  """The dataset has not been prepared in the data directory."""


def prepare_command(name: str, data_dir: str) -> str:
  return f"python -m gan_jax.prepare --dataset={name} --data_dir={data_dir}"


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
        name=name, tfds_name=cls.name, builder=lambda d, cls=cls: cls(data_dir=d),
        example_shape=shape, preprocess=_as_float32, auto_prepare=True, mixture=mixture))


_register_synthetic()
