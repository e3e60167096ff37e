"""The colour datasets prepared offline: emoji (from the npm tarball) and
CIFAR-10 (from cifar-10-python.tar.gz), each built from a tiny archive in the
same format that the test writes itself."""

import dataclasses
import io
import json
import pickle
import tarfile

import numpy as np
import pytest
import tensorflow_datasets as tfds
from PIL import Image

from gan_jax.data import DATASETS, cifar10, emoji
from gan_jax.data import pipeline as pipeline_lib


def add_file(archive: tarfile.TarFile, name: str, data: bytes) -> None:
  info = tarfile.TarInfo(name)
  info.size = len(data)
  archive.addfile(info, io.BytesIO(data))


def png_bytes(rgba: np.ndarray) -> bytes:
  buffer = io.BytesIO()
  Image.fromarray(rgba, "RGBA").save(buffer, format="PNG")
  return buffer.getvalue()


def build(builder, manual_dir):
  builder.download_and_prepare(
      file_format="array_record",
      download_config=tfds.download.DownloadConfig(manual_dir=str(manual_dir)))


# --- Emoji ------------------------------------------------------------------


def test_compositing_on_white():
  rgba = np.array([[[255, 0, 0, 255], [255, 0, 0, 0], [0, 0, 255, 128]]], np.uint8)
  np.testing.assert_array_equal(emoji.composite_on_white(rgba),
                                [[[255, 0, 0], [255, 255, 255], [127, 127, 255]]])


def test_emoji_from_a_tiny_tarball(tmp_path):
  names = [f"e{i}.png" for i in range(40)]
  test_name = next(n for n in names if emoji.is_test(n))
  train_names = [n for n in names if not emoji.is_test(n)][:2]
  index = [{"image": test_name, "category": "Flags",
            "skin_variations": {"1F3FB": {"image": "skin-1f3fb.png"}}},
           {"image": train_names[0], "category": "Symbols"},
           {"image": train_names[1], "category": "Activities"}]
  files = [test_name, "skin-1f3fb.png"] + train_names
  colours = {name: np.full((64, 64, 4), [40 * i, 10, 200, 255], np.uint8)
             for i, name in enumerate(files)}
  colours[train_names[1]][..., 3] = 0  # fully transparent: white
  manual = tmp_path / "manual"
  manual.mkdir()
  with tarfile.open(manual / emoji.TARBALL, "w:gz") as archive:
    add_file(archive, "package/emoji.json", json.dumps(index).encode())
    for name, rgba in colours.items():
      add_file(archive, f"package/img/google/64/{name}", png_bytes(rgba))
  data_dir = str(tmp_path / "tfds")
  spec = DATASETS.get("emoji")
  build(spec.builder(data_dir), manual)
  test = pipeline_lib.load_split(spec, "test", data_dir)
  train = pipeline_lib.load_split(spec, "train", data_dir)
  # The skin-tone variant follows its base emoji into the test split.
  assert test["image"].shape == (2, 64, 64, 3) and len(train["image"]) == 2
  np.testing.assert_array_equal(test["label"], [emoji.CATEGORIES.index("Flags")] * 2)
  by_label = dict(zip(train["label"].tolist(), train["image"]))
  np.testing.assert_array_equal(by_label[emoji.CATEGORIES.index("Activities")], 255)
  np.testing.assert_array_equal(by_label[emoji.CATEGORIES.index("Symbols")][0, 0],
                                colours[train_names[0]][0, 0, :3])


def test_emoji_tarball_hash_is_checked(tmp_path):
  (tmp_path / emoji.TARBALL).write_bytes(b"not the package")
  with pytest.raises(ValueError, match="SHA-256"):
    emoji.fetch(str(tmp_path))


# --- CIFAR-10 ---------------------------------------------------------------


def write_cifar_archive(path, counts, rng):
  """A cifar-10-python.tar.gz holding counts[name] images per batch."""
  contents = {}
  with tarfile.open(path, "w:gz") as archive:
    for name, count in counts.items():
      images = rng.integers(0, 256, (count, 32, 32, 3), np.uint8)
      labels = rng.integers(0, 10, count).tolist()
      batch = {b"data": images.transpose(0, 3, 1, 2).reshape(count, 3072), b"labels": labels}
      add_file(archive, f"cifar-10-batches-py/{name}", pickle.dumps(batch, protocol=2))
      contents[name] = (images, labels)
  return contents


def test_cifar10_from_a_tiny_archive(tmp_path):
  counts = {**{f"data_batch_{i}": 2 for i in range(1, 6)}, "test_batch": 3}
  contents = write_cifar_archive(tmp_path / cifar10.ARCHIVE, counts, np.random.default_rng(0))
  config = cifar10.ArchiveConfig(name="tiny", num_train=10, num_test=3)
  spec = dataclasses.replace(DATASETS.get("cifar10"),
                             builder=lambda d: cifar10.Cifar10Python(data_dir=d, config=config))
  data_dir = str(tmp_path / "tfds")
  build(spec.builder(data_dir), tmp_path)
  train = pipeline_lib.load_split(spec, "train", data_dir)
  test = pipeline_lib.load_split(spec, "test", data_dir)

  def pairs(images, labels):  # TFDS shuffles records: compare as sets
    return sorted((image.tobytes(), int(label)) for image, label in zip(images, labels))

  expected_train = [contents[f"data_batch_{i}"] for i in range(1, 6)]
  assert pairs(train["image"], train["label"]) == pairs(
      np.concatenate([c[0] for c in expected_train]), sum((c[1] for c in expected_train), []))
  assert pairs(test["image"], test["label"]) == pairs(*contents["test_batch"])


def test_cifar10_archive_cannot_run_code(tmp_path):
  class Payload:
    def __reduce__(self):
      return (print, ("pwned",))

  with tarfile.open(tmp_path / cifar10.ARCHIVE, "w:gz") as archive:
    add_file(archive, "cifar-10-batches-py/data_batch_1", pickle.dumps({b"data": Payload()}))
  with pytest.raises(pickle.UnpicklingError, match="unexpected global"):
    cifar10.read_archive(str(tmp_path / cifar10.ARCHIVE))
