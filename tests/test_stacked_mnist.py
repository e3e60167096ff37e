"""Stacked MNIST: the stacks, the TFDS builder, and the per-channel mode metric."""

import dataclasses
import math

import numpy as np
import pytest

from gan_jax.data import DATASETS, dataset_spec, default_data_dir
from gan_jax.data import pipeline as pipeline_lib
from gan_jax.data import stacked_mnist
from gan_jax.evaluation import classifier as classifier_lib
from gan_jax.evaluation import image_evaluation
from configs import dcgan_stacked_mnist

PREPARED_DIR = default_data_dir()  # read before the data_dir fixture changes it


def indexed_source(count):
  """Images whose every pixel is their index, labelled index % 10."""
  images = np.broadcast_to(np.arange(count, dtype=np.uint8)[:, None, None, None],
                           (count, 28, 28, 1)).copy()
  return images, np.arange(count) % 10


def test_each_channel_is_a_source_image_and_the_label_is_their_mode():
  images, labels = indexed_source(50)
  stacks, modes = stacked_mnist.draw_stacks(images, labels, 300, seed=3)
  assert stacks.shape == (300, 28, 28, 3) and stacks.dtype == np.uint8
  picks = stacks[:, 0, 0, :].astype(int)  # (300, 3) source indices
  np.testing.assert_array_equal(stacks, np.moveaxis(images[picks, ..., 0], 1, -1))
  np.testing.assert_array_equal(modes, 100 * (picks[:, 0] % 10) + 10 * (picks[:, 1] % 10)
                                + picks[:, 2] % 10)
  again, _ = stacked_mnist.draw_stacks(images, labels, 300, seed=3)
  other, _ = stacked_mnist.draw_stacks(images, labels, 300, seed=4)
  np.testing.assert_array_equal(stacks, again)
  assert not np.array_equal(stacks, other)
  # Channels are drawn independently: all three agree far less than always.
  assert np.mean((picks[:, 0] == picks[:, 1]) & (picks[:, 1] == picks[:, 2])) < 0.05


def test_builder_prepares_its_source_first_and_stacks_its_images(data_dir):
  tiny = stacked_mnist.StackConfig(name="tiny_blobs", source="blobs", num_train=40,
                                   num_test=8)
  spec = dataclasses.replace(
      DATASETS.get("stacked_mnist"), requires=("blobs",),
      builder=lambda d: stacked_mnist.StackedMnist(data_dir=d, config=tiny))
  pipeline_lib.prepare(spec, data_dir)
  assert pipeline_lib.is_prepared(DATASETS.get("blobs"), data_dir)
  source = pipeline_lib.load_split(DATASETS.get("blobs"), "train", data_dir)
  stacks = pipeline_lib.load_split(spec, "train", data_dir)
  assert stacks["image"].shape == (40, 28, 28, 3)
  expected_images, expected_modes = stacked_mnist.draw_stacks(
      source["image"], source["label"], 40, seed=0)
  # TFDS stores records in the order of a hash of their keys: compare as sets.
  def as_set(images, modes):
    return {(image.tobytes(), int(mode)) for image, mode in zip(images, modes)}
  assert as_set(stacks["image"], stacks["label"]) == as_set(expected_images, expected_modes)
  assert len(pipeline_lib.load_split(spec, "test", data_dir)["image"]) == 8


def test_registered_spec_and_config_agree():
  spec = DATASETS.get("stacked_mnist")
  assert spec.example_shape == (28, 28, 3) and spec.num_classes == 1000
  assert spec.requires == ("mnist",)
  config = dcgan_stacked_mnist.get_config()
  assert dataset_spec(config).example_shape == (28, 28, 3)
  assert config.eval.num_samples == 26_000  # PacGAN's sample count


def fake_digit_classifier(monkeypatch):
  """Replaces the classifier by one that reads the digit off the image's mean
  intensity (digit d: every pixel at d / 9 of the way up the value range)."""

  def features_and_probabilities(classifier, images, value_range=(-1.0, 1.0), **_):
    low, high = value_range
    level = (np.asarray(images).mean(axis=(1, 2, 3)) - low) / (high - low)
    digits = np.clip(np.round(9 * level), 0, 9).astype(int)
    return np.zeros((len(images), 4)), np.eye(10)[digits] * 0.9 + 0.01

  monkeypatch.setattr(classifier_lib, "features_and_probabilities", features_and_probabilities)


def test_mode_metric_every_mode_once():
  triples = np.stack(np.meshgrid(*[np.arange(10)] * 3, indexing="ij"), -1).reshape(-1, 3)
  out = image_evaluation.stacked_mnist_modes(triples)
  assert out["modes"] == 1000
  assert out["reverse_kl"] == pytest.approx(0.0, abs=1e-12)


def test_mode_metric_channel_order_names_different_modes():
  digits = np.array([[1, 2, 3]] * 3 + [[3, 2, 1]] * 1)
  out = image_evaluation.stacked_mnist_modes(digits)
  assert out["modes"] == 2
  # Histogram (3/4, 1/4) on 2 of 1000 modes.
  expected = 0.75 * math.log(0.75 * 1000) + 0.25 * math.log(0.25 * 1000)
  assert out["reverse_kl"] == pytest.approx(expected, rel=1e-12)


def test_mode_metric_ten_equal_modes_give_log_hundred():
  digits = np.repeat(np.stack([np.arange(10)] * 3, axis=1), 7, axis=0)
  out = image_evaluation.stacked_mnist_modes(digits)
  assert out["modes"] == 10
  assert out["reverse_kl"] == pytest.approx(math.log(100.0), rel=1e-12)


def test_mode_metric_rejects_bad_digits():
  with pytest.raises(ValueError):
    image_evaluation.stacked_mnist_modes(np.array([[1, 2, 10]]))
  with pytest.raises(ValueError):
    image_evaluation.stacked_mnist_modes(np.array([[1, 2]]))


def test_mode_metric_classifies_every_channel_in_order(monkeypatch):
  fake_digit_classifier(monkeypatch)
  rng = np.random.default_rng(0)
  digits = rng.integers(0, 10, (500, 3))
  samples = np.broadcast_to((digits / 9 * 2 - 1)[:, None, None, :], (500, 28, 28, 3))
  spec = DATASETS.get("stacked_mnist")
  result = image_evaluation.stacked_mode_metrics(spec, np.asarray(samples, np.float32),
                                                 data_dir="unused", with_floor=False)
  expected = image_evaluation.stacked_mnist_modes(digits)
  assert result["modes"] == expected["modes"] and result["modes"] < 1000
  assert result["reverse_kl"] == pytest.approx(expected["reverse_kl"])
  assert result["channel_confidence"] == pytest.approx(0.91)
  assert result["extractor"] == "mnist" and result["num_generated"] == 500
  # Swapping two channels names other modes: the order is kept.
  swapped = image_evaluation.stacked_mode_metrics(
      spec, np.asarray(samples[..., [1, 0, 2]], np.float32), "unused", with_floor=False)
  assert swapped["reverse_kl"] == pytest.approx(
      image_evaluation.stacked_mnist_modes(digits[:, [1, 0, 2]])["reverse_kl"])


@pytest.mark.skipif(not DATASETS.get("stacked_mnist").builder(PREPARED_DIR).is_prepared(),
                    reason=f"stacked_mnist is not prepared in {PREPARED_DIR}")
def test_real_test_stacks_are_read_back_by_the_classifier():
  spec = dataset_spec(dcgan_stacked_mnist.get_config())
  test = pipeline_lib.load_eval_split(spec, "test", PREPARED_DIR, limit=2000)
  classifier = classifier_lib.load_classifier("mnist")
  digits, _ = image_evaluation.channel_digits(classifier, test["x"], spec.value_range)
  accuracy = np.mean(stacked_mnist.mode_of(digits) == test["label"])
  assert accuracy > 0.97  # about 0.993 ** 3
