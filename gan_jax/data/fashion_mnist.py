"""Fashion-MNIST from its four IDX files on disk, as a TFDS builder.

The files are the ones Zalando publishes (gzipped or not):
train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte and
t10k-labels-idx1-ubyte. Debian's `dataset-fashion-mnist` package installs them,
gzipped, in /usr/share/datasets/fashion-mnist/. Images are stored as raw uint8
tensors rather than PNG, so preparing needs no TensorFlow.

The TFDS name is `fashion_mnist_idx`, apart from the catalog's `fashion_mnist`
(which downloads the same files).
"""

from __future__ import annotations

import dataclasses
import gzip
import os

import numpy as np
import tensorflow_datasets as tfds

DEFAULT_DIR = "/usr/share/datasets/fashion-mnist"
CLASS_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
               "Sneaker", "Bag", "Ankle boot")
SIZE = 28
_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
          "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
# IDX type codes: 0x08 is unsigned byte, the only type these files use.
_UBYTE = 0x08


class SourceFilesMissing(FileNotFoundError):
  """The IDX files to prepare from are not where they were looked for."""


INSTALL_HINT = (
    f"Install them with `apt-get install dataset-fashion-mnist` (into {DEFAULT_DIR}), or put "
    "the four IDX files (.gz or not) in a directory DIR and run\n"
    "  python -m gan_jax.prepare --dataset=fashion_mnist --manual_dir=DIR")


def find_file(directory: str, stem: str) -> str:
  for name in (stem, stem + ".gz"):
    path = os.path.join(directory, name)
    if os.path.exists(path):
      return path
  raise SourceFilesMissing(
      f"Fashion-MNIST file {stem}[.gz] not found in {directory}. {INSTALL_HINT}")


def read_idx(path: str) -> np.ndarray:
  """An IDX file (gzipped if its name ends in .gz) as a uint8 array."""
  opener = gzip.open if path.endswith(".gz") else open
  with opener(path, "rb") as f:
    data = f.read()
  if len(data) < 4 or data[:2] != b"\0\0" or data[2] != _UBYTE:
    raise ValueError(f"{path} is not an unsigned-byte IDX file (header {data[:4]!r}).")
  ndim = data[3]
  shape = tuple(int(d) for d in np.frombuffer(data, ">u4", count=ndim, offset=4))
  body = np.frombuffer(data, np.uint8, offset=4 + 4 * ndim)
  if body.size != int(np.prod(shape)):
    raise ValueError(f"{path}: header says {shape} ({int(np.prod(shape))} bytes), "
                     f"body has {body.size} bytes.")
  return body.reshape(shape)


def read_split(directory: str, split: str, count: int) -> tuple[np.ndarray, np.ndarray]:
  """(images (count, 28, 28, 1), labels (count,)), checked against the format."""
  images_path, labels_path = (find_file(directory, stem) for stem in _FILES[split])
  images, labels = read_idx(images_path), read_idx(labels_path)
  if images.shape != (count, SIZE, SIZE):
    raise ValueError(f"{images_path}: expected {count} images of {SIZE}x{SIZE}, "
                     f"found shape {images.shape}.")
  if labels.shape != (count,):
    raise ValueError(f"{labels_path}: expected {count} labels, found shape {labels.shape}.")
  if labels.max(initial=0) >= len(CLASS_NAMES):
    raise ValueError(f"{labels_path}: label {labels.max()} is not a class (0..9).")
  return images[..., None], labels


@dataclasses.dataclass(eq=False)
class IdxConfig(tfds.core.BuilderConfig):
  """How many examples each split must have (tests use small files)."""

  num_train: int = 60_000
  num_test: int = 10_000


class FashionMnistIdx(tfds.core.GeneratorBasedBuilder):
  """Fashion-MNIST: 28x28 grey images of clothes in 10 classes."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "First release."}
  BUILDER_CONFIGS = [IdxConfig(name="full", description="60,000 train / 10,000 test.")]
  MANUAL_DOWNLOAD_INSTRUCTIONS = INSTALL_HINT

  def _info(self):
    return self.dataset_info_from_configs(
        features=tfds.features.FeaturesDict({
            "image": tfds.features.Tensor(shape=(SIZE, SIZE, 1), dtype=np.uint8),
            "label": tfds.features.ClassLabel(names=CLASS_NAMES)}),
        supervised_keys=("image", "label"),
        homepage="https://github.com/zalandoresearch/fashion-mnist",
        description=self.__doc__)

  def _split_generators(self, dl_manager):
    try:
      directory = os.fspath(dl_manager.manual_dir)
    except AssertionError as error:  # TFDS: the manual dir is missing or empty
      raise SourceFilesMissing(str(error)) from None
    counts = {"train": self.builder_config.num_train, "test": self.builder_config.num_test}
    # Read every split before writing any, so a bad file fails fast.
    arrays = {split: read_split(directory, split, count) for split, count in counts.items()}
    return {split: self._generate_examples(*arrays[split]) for split in counts}

  def _generate_examples(self, images, labels):
    for i, (image, label) in enumerate(zip(images, labels)):
      yield i, {"image": image, "label": int(label)}
