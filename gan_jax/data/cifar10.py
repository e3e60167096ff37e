"""CIFAR-10 from the standard `cifar-10-python.tar.gz`, offline, as a TFDS
builder:

    python -m gan_jax.prepare --dataset=cifar10 --source=PATH/cifar-10-python.tar.gz

The archive (from https://www.cs.toronto.edu/~kriz/cifar.html; no registry
here serves it) holds `cifar-10-batches-py/`: five training batches and
`test_batch`, each a pickled dict whose `data` is (10000, 3072) uint8, a row
being the red, then green, then blue 32x32 plane, and whose `labels` are
0..9; `batches.meta` names the classes. The pickles are read with an
unpickler that admits only NumPy's array reconstruction, so the archive
cannot run code. Images are stored as raw uint8 tensors: preparing needs no
TensorFlow. The TFDS name is `cifar10_python`.
"""

from __future__ import annotations

import dataclasses
import io
import os
import pickle
import tarfile

import numpy as np
import tensorflow_datasets as tfds

ARCHIVE = "cifar-10-python.tar.gz"
_DIRECTORY = "cifar-10-batches-py"
CLASS_NAMES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
               "ship", "truck")
SIZE = 32
_SPLIT_BATCHES = {"train": tuple(f"data_batch_{i}" for i in range(1, 6)),
                  "test": ("test_batch",)}
_ALLOWED_GLOBALS = {("numpy.core.multiarray", "_reconstruct"),
                    ("numpy._core.multiarray", "_reconstruct"),
                    ("numpy", "ndarray"), ("numpy", "dtype"),
                    ("_codecs", "encode")}  # how protocol-2 pickles of Python 3 hold bytes
SOURCE_HINT = (f"Give the standard archive {ARCHIVE} (from "
               "https://www.cs.toronto.edu/~kriz/cifar.html):\n"
               f"  python -m gan_jax.prepare --dataset=cifar10 --source=PATH/{ARCHIVE}")


class _ArrayUnpickler(pickle.Unpickler):

  def find_class(self, module, name):
    if (module, name) not in _ALLOWED_GLOBALS:
      raise pickle.UnpicklingError(f"{ARCHIVE}: unexpected global {module}.{name}")
    return super().find_class(module, name)


def _load_batch(archive: tarfile.TarFile, name: str) -> dict:
  member = archive.extractfile(f"{_DIRECTORY}/{name}")
  if member is None:
    raise ValueError(f"{ARCHIVE} lacks {_DIRECTORY}/{name}.")
  return _ArrayUnpickler(io.BytesIO(member.read()), encoding="bytes").load()


def read_archive(path: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
  """{split: (images (N, 32, 32, 3) uint8, labels (N,) int64)}."""
  splits = {}
  with tarfile.open(path, "r:gz") as archive:
    for split, batches in _SPLIT_BATCHES.items():
      images, labels = [], []
      for name in batches:
        batch = _load_batch(archive, name)
        data = np.asarray(batch[b"data"], np.uint8)
        if data.ndim != 2 or data.shape[1] != 3 * SIZE * SIZE:
          raise ValueError(f"{path}: {name} data has shape {data.shape}, not (N, 3072).")
        images.append(data.reshape(-1, 3, SIZE, SIZE).transpose(0, 2, 3, 1))
        labels.append(np.asarray(batch[b"labels"], np.int64))
      splits[split] = (np.concatenate(images), np.concatenate(labels))
  for split, (images, labels) in splits.items():
    if len(images) != len(labels) or labels.min(initial=0) < 0 or labels.max(initial=0) > 9:
      raise ValueError(f"{path}: {split} labels do not match the images or lie outside 0..9.")
  return splits


@dataclasses.dataclass(eq=False)
class ArchiveConfig(tfds.core.BuilderConfig):
  """How many examples each split must have (tests use tiny archives)."""

  num_train: int = 50_000
  num_test: int = 10_000


class Cifar10Python(tfds.core.GeneratorBasedBuilder):
  """CIFAR-10: 32x32 colour images in 10 classes, from cifar-10-python.tar.gz."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "First release."}
  BUILDER_CONFIGS = [ArchiveConfig(name="full", description="50,000 train / 10,000 test.")]
  MANUAL_DOWNLOAD_INSTRUCTIONS = SOURCE_HINT

  def _info(self):
    return self.dataset_info_from_configs(
        features=tfds.features.FeaturesDict({
            "image": tfds.features.Tensor(shape=(SIZE, SIZE, 3), dtype=np.uint8),
            "label": tfds.features.ClassLabel(names=CLASS_NAMES)}),
        supervised_keys=("image", "label"),
        homepage="https://www.cs.toronto.edu/~kriz/cifar.html",
        description=self.__doc__)

  def _split_generators(self, dl_manager):
    path = os.path.join(os.fspath(dl_manager.manual_dir), ARCHIVE)
    if not os.path.exists(path):
      raise FileNotFoundError(f"No {ARCHIVE} in {dl_manager.manual_dir}. {SOURCE_HINT}")
    splits = read_archive(path)
    counts = {"train": self.builder_config.num_train, "test": self.builder_config.num_test}
    for split, count in counts.items():
      if len(splits[split][0]) != count:
        raise ValueError(f"{path}: {split} has {len(splits[split][0])} images, "
                         f"expected {count}.")
    return {split: self._generate_examples(*arrays) for split, arrays in splits.items()}

  def _generate_examples(self, images, labels):
    for i, (image, label) in enumerate(zip(images, labels)):
      yield i, {"image": image, "label": int(label)}
