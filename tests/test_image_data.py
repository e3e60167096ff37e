"""Image datasets: the IDX builder, resizing, preprocessing and binarisation."""

import dataclasses
import gzip
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from ml_collections import ConfigDict

from gan_jax.data import (DATASETS, PREPROCESSORS, DataNotPreparedError, dataset_spec,
                          fashion_mnist, images)
from gan_jax.data import pipeline as pipeline_lib
from gan_jax.registry import ConfigError

TINY = {"train": 12, "test": 5}
_STEMS = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
          "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


def write_idx(path, array):
  """The IDX format from its definition: 0, 0, type 0x08, ndim, big-endian
  dimensions, then the bytes."""
  array = np.ascontiguousarray(array, np.uint8)
  data = (bytes([0, 0, 0x08, array.ndim]) + np.array(array.shape, ">u4").tobytes()
          + array.tobytes())
  with (gzip.open if str(path).endswith(".gz") else open)(path, "wb") as f:
    f.write(data)


def tiny_images(split):
  """Distinct images (pixel (0, 0) holds the index) with known labels."""
  count = TINY[split]
  rng = np.random.default_rng(len(split))
  pictures = rng.integers(0, 256, size=(count, 28, 28), dtype=np.uint8)
  pictures[:, 0, 0] = np.arange(count)
  return pictures, (np.arange(count) * 3 % 10).astype(np.uint8)


def write_split(directory, split, gz):
  pictures, labels = tiny_images(split)
  suffix = ".gz" if gz else ""
  write_idx(os.path.join(directory, _STEMS[split][0] + suffix), pictures)
  write_idx(os.path.join(directory, _STEMS[split][1] + suffix), labels)


def tiny_spec():
  config = fashion_mnist.IdxConfig(name="tiny", num_train=TINY["train"],
                                   num_test=TINY["test"])
  return dataclasses.replace(
      DATASETS.get("fashion_mnist"),
      builder=lambda d: fashion_mnist.FashionMnistIdx(data_dir=d, config=config))


def image_config(name="fashion_mnist", resolution=0, preprocessing="symmetric", seed=0):
  return ConfigDict(dict(seed=seed, dataset=dict(name=name, data_dir="", resolution=resolution,
                                                 preprocessing=preprocessing)))


@pytest.fixture(scope="module")
def idx_dir(tmp_path_factory):
  directory = str(tmp_path_factory.mktemp("idx"))
  write_split(directory, "train", gz=True)   # Debian ships .gz
  write_split(directory, "test", gz=False)   # Zalando's unpacked files
  return directory


@pytest.fixture(scope="module")
def tiny_data_dir(tmp_path_factory, idx_dir):
  data_dir = str(tmp_path_factory.mktemp("tfds_images"))
  pipeline_lib.prepare(tiny_spec(), data_dir, manual_dir=idx_dir)
  return data_dir


def test_idx_round_trip_through_the_builder(tiny_data_dir):
  spec = tiny_spec()
  assert spec.builder(tiny_data_dir).info.splits["train"].num_examples == TINY["train"]
  for split in ("train", "test"):
    arrays = pipeline_lib.load_split(spec, split, tiny_data_dir)
    assert arrays["image"].shape == (TINY[split], 28, 28, 1)
    assert arrays["image"].dtype == np.uint8
    order = np.argsort(arrays["image"][:, 0, 0, 0])  # TFDS shuffles the records
    pictures, labels = tiny_images(split)
    np.testing.assert_array_equal(arrays["image"][order, :, :, 0], pictures)
    np.testing.assert_array_equal(arrays["label"][order], labels)


def test_the_default_config_insists_on_60000_and_10000(idx_dir, tmp_path):
  with pytest.raises(ValueError, match="expected 60000 images of 28x28"):
    pipeline_lib.prepare(DATASETS.get("fashion_mnist"), str(tmp_path), manual_dir=idx_dir)


def test_a_bad_header_is_an_error(tmp_path):
  path = str(tmp_path / "bad")
  write_idx(path, np.zeros((3, 28, 28)))
  with open(path, "r+b") as f:
    f.write(bytes([0, 0, 0x0D]))  # type code of float32
  with pytest.raises(ValueError, match="not an unsigned-byte IDX file"):
    fashion_mnist.read_idx(path)


def test_missing_files_say_how_to_get_them(tmp_path):
  write_split(str(tmp_path), "train", gz=True)
  with pytest.raises(fashion_mnist.SourceFilesMissing) as error:
    pipeline_lib.prepare(tiny_spec(), str(tmp_path / "tfds"), manual_dir=str(tmp_path))
  message = str(error.value)
  assert "t10k-images-idx3-ubyte[.gz] not found" in message
  assert "apt-get install dataset-fashion-mnist" in message
  assert "python -m gan_jax.prepare --dataset=fashion_mnist --manual_dir=DIR" in message


def test_an_empty_manual_dir_says_how_to_fill_it(tmp_path):
  (tmp_path / "empty").mkdir()
  with pytest.raises(fashion_mnist.SourceFilesMissing, match="apt-get install dataset-fash"):
    pipeline_lib.prepare(tiny_spec(), str(tmp_path / "tfds"), str(tmp_path / "empty"))


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist", "cifar10", "celeb_a"])
def test_unprepared_image_data_says_how_to_prepare(name, tmp_path):
  with pytest.raises(DataNotPreparedError) as error:
    pipeline_lib.load_split(DATASETS.get(name), "train", str(tmp_path))
  message = str(error.value)
  assert f"python -m gan_jax.prepare --dataset={name} --data_dir={tmp_path}" in message
  if name not in ("fashion_mnist", "cifar10"):
    assert "pip install -e '.[prepare]'" in message


def test_preparing_mnist_without_tensorflow_says_what_to_install(monkeypatch, tmp_path):
  monkeypatch.setitem(sys.modules, "tensorflow", None)  # `import tensorflow` now fails
  with pytest.raises(ImportError, match=r"pip install -e '\.\[prepare\]'"):
    pipeline_lib.prepare(DATASETS.get("mnist"), str(tmp_path))
  assert not os.listdir(tmp_path)


def test_unknown_names_list_the_valid_ones():
  with pytest.raises(ConfigError, match="celeb_a, cifar10, emoji, fashion_mnist, grid25, mnist"):
    DATASETS.get("mnsit")
  with pytest.raises(ConfigError,
                     match="dynamic_binarize, static_binarize, symmetric, unit"):
    dataset_spec(image_config(preprocessing="binarize"))


def test_synthetic_datasets_refuse_image_options():
  assert dataset_spec(image_config("ring8")) is DATASETS.get("ring8")
  with pytest.raises(ConfigError, match="not an image dataset"):
    dataset_spec(image_config("ring8", resolution=32))


def test_configs_without_the_new_keys_get_the_defaults():
  config = ConfigDict(dict(seed=0, dataset=dict(name="mnist", data_dir="")))
  spec = dataset_spec(config)
  assert spec.example_shape == (28, 28, 1)
  batch = {"image": np.full((2, 28, 28, 1), 255, np.uint8), "label": np.arange(2)}
  np.testing.assert_array_equal(spec.preprocess(batch)["x"], 1.0)


@pytest.mark.parametrize("size_in,size_out", [(28, 32), (28, 28), (64, 28), (32, 17), (5, 12)])
def test_resize_keeps_constants_and_rows_are_weights(size_in, size_out):
  matrix = images.resize_matrix(size_in, size_out)
  assert matrix.shape == (size_out, size_in) and (matrix >= 0).all()
  np.testing.assert_allclose(matrix.sum(1), 1.0, rtol=1e-6)
  constant = np.full((2, size_in, size_in, 3), 0.37, np.float32)
  np.testing.assert_allclose(images.resize(constant, size_out, size_out), 0.37, rtol=1e-6)


def test_resize_to_the_same_size_is_the_identity():
  batch = np.random.default_rng(0).random((3, 28, 28, 1), np.float32)
  np.testing.assert_array_equal(images.resize_matrix(28, 28), np.eye(28))
  np.testing.assert_array_equal(images.resize(batch, 28, 28), batch)


@pytest.mark.parametrize("size_in,size_out", [(28, 32), (64, 28), (32, 17)])
def test_resize_matches_jax_antialiased_linear(size_in, size_out):
  batch = np.random.default_rng(1).random((2, size_in, size_in, 3), np.float32)
  expected = jax.image.resize(jnp.asarray(batch), (2, size_out, size_out, 3), "linear",
                              antialias=True)
  np.testing.assert_allclose(images.resize(batch, size_out, size_out), expected, atol=2e-6)


def _batch(pixels, count=4):
  return {"image": np.broadcast_to(np.asarray(pixels, np.uint8), (count, 28, 28, 1)).copy(),
          "label": np.arange(count), "index": np.arange(count), "position": np.arange(count)}


@pytest.mark.parametrize("preprocessing,low,high", [("symmetric", -1, 1), ("unit", 0, 1)])
def test_preprocessing_ranges(preprocessing, low, high):
  spec = dataset_spec(image_config("mnist", resolution=32, preprocessing=preprocessing))
  assert spec.example_shape == (32, 32, 1)
  pixels = np.random.default_rng(2).integers(0, 256, (28, 28, 1))
  pixels[0, 0], pixels[5, 5] = 0, 255
  out = spec.preprocess(_batch(pixels))
  assert out["x"].shape == (4, 32, 32, 1) and out["x"].dtype == np.float32
  assert out["label"].dtype == np.int32
  assert out["x"].min() >= low and out["x"].max() <= high
  native = dataset_spec(image_config("mnist", preprocessing=preprocessing))
  x = native.preprocess(_batch(pixels))["x"]
  assert x[0, 0, 0, 0] == low and x[0, 5, 5, 0] == high


def _binarizing_source(arrays, seed, batch, process_index=0, process_count=1):
  source = pipeline_lib._ShuffledBatchSource(arrays, seed, batch, process_index, process_count)
  preprocess = dataset_spec(image_config("mnist", preprocessing="dynamic_binarize",
                                         seed=seed)).preprocess
  return lambda k: preprocess(source[k])["x"]


def _grey_arrays(value, count=10):
  return {"image": np.full((count, 28, 28, 1), value, np.uint8),
          "label": np.zeros(count, np.int64)}


def test_dynamic_binarization_is_exact_per_seed_and_batch():
  arrays = _grey_arrays(128)
  first, again = _binarizing_source(arrays, 7, 8), _binarizing_source(arrays, 7, 8)
  np.testing.assert_array_equal(first(3), again(3))
  assert set(np.unique(first(3))) <= {0.0, 1.0}
  # Every record is the same grey image, so any difference is the noise's.
  assert not np.array_equal(first(3), first(4))
  assert not np.array_equal(first(3)[0], first(3)[1])
  assert not np.array_equal(first(3), _binarizing_source(arrays, 8, 8)(3))


@pytest.mark.parametrize("process_count", [2, 4])
def test_dynamic_binarization_does_not_depend_on_the_process_split(process_count):
  arrays = _grey_arrays(100, count=30)
  whole = _binarizing_source(arrays, 3, 8)
  parts = [_binarizing_source(arrays, 3, 8, p, process_count) for p in range(process_count)]
  for k in (0, 4, 11):
    np.testing.assert_array_equal(np.concatenate([part(k) for part in parts]), whole(k))


def test_dynamic_binarization_mean_is_the_intensity():
  value = 77
  draws = np.concatenate([_binarizing_source(_grey_arrays(value), 0, 16)(k)
                          for k in range(20)])
  p, n = value / 255, draws.size
  assert abs(draws.mean() - p) < 4 * np.sqrt(p * (1 - p) / n)
  rows = draws.reshape(len(draws), -1).mean(1)  # each image's own mean, too
  assert np.all(np.abs(rows - p) < 5 * np.sqrt(p * (1 - p) / rows.size))


def test_uniform_noise_rows_depend_only_on_their_key():
  keys = np.array([5, 900, 3, 2**40])
  together = images.uniform_noise(11, keys, (4, 4, 1))
  alone = np.stack([images.uniform_noise(11, keys[i:i + 1], (4, 4, 1))[0] for i in range(4)])
  np.testing.assert_array_equal(together, alone)
  noise = images.uniform_noise(0, np.arange(1000), (32,)).ravel()
  assert 0 <= noise.min() and noise.max() < 1
  assert abs(noise.mean() - 0.5) < 0.005 and abs(noise.var() - 1 / 12) < 0.002


def test_eval_split_is_binarised_once_with_a_fixed_seed(tiny_data_dir):
  dynamic = [dataclasses.replace(dataset_spec(image_config(preprocessing="dynamic_binarize",
                                                           resolution=32, seed=seed)),
                                 builder=tiny_spec().builder) for seed in (0, 1)]
  static = dataclasses.replace(
      dataset_spec(image_config(preprocessing="static_binarize", resolution=32, seed=5)),
      builder=tiny_spec().builder)
  first = pipeline_lib.load_eval_split(dynamic[0], "test", tiny_data_dir)
  assert first["x"].shape == (TINY["test"], 32, 32, 1) and first["label"].dtype == np.int32
  assert set(np.unique(first["x"])) == {0.0, 1.0}
  for spec in (dynamic[1], static):
    again = pipeline_lib.load_eval_split(spec, "test", tiny_data_dir)
    np.testing.assert_array_equal(again["x"], first["x"])


def test_eval_split_matches_the_training_preprocessing(tiny_data_dir):
  spec = dataclasses.replace(dataset_spec(image_config(resolution=32)),
                             builder=tiny_spec().builder)
  split = pipeline_lib.load_eval_split(spec, "test", tiny_data_dir)
  raw = pipeline_lib.load_split(spec, "test", tiny_data_dir)
  expected = 2 * images.resize(raw["image"].astype(np.float32) / 255, 32, 32) - 1
  np.testing.assert_allclose(split["x"], expected, atol=1e-6)
  np.testing.assert_array_equal(split["label"], raw["label"])


def test_registered_image_specs():
  for name, shape in (("mnist", (28, 28, 1)), ("fashion_mnist", (28, 28, 1)),
                      ("cifar10", (32, 32, 3)), ("celeb_a", (64, 64, 3))):
    spec = DATASETS.get(name)
    assert spec.is_image and spec.example_shape == shape
  assert "symmetric" in PREPROCESSORS


def test_celeba_collation_crops_the_centre_square():
  picture = np.zeros((218, 178, 3), np.uint8)
  picture[20:198] = 200  # the centred 178 x 178 square
  out = images.center_crop_and_resize(178, 64)([{"image": picture}] * 2)
  assert out["image"].shape == (2, 64, 64, 3) and out["image"].dtype == np.uint8
  np.testing.assert_array_equal(out["image"], 200)
  np.testing.assert_array_equal(out["label"], 0)


MNIST_DIR = os.path.expanduser("~/tensorflow_datasets")


@pytest.mark.skipif(not DATASETS.get("mnist").builder(MNIST_DIR).is_prepared(),
                    reason=f"MNIST is not prepared in {MNIST_DIR}")
def test_prepared_mnist():
  spec = DATASETS.get("mnist")
  for split, count, zeros in (("train", 60_000, 5923), ("test", 10_000, 980)):
    arrays = pipeline_lib.load_split(spec, split, MNIST_DIR)
    assert arrays["image"].shape == (count, 28, 28, 1)
    assert sorted(np.unique(arrays["label"])) == list(range(10))
    assert np.sum(arrays["label"] == 0) == zeros  # the published class count
