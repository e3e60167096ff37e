"""The evaluation behind the MNIST tables (`reference_features`,
`floor_metrics`, `classifier_metrics`) on the committed real digits of
tests/data/mnist_sample.npz, checked against a second computation and against
how real, noised and collapsed sets must rank."""

import numpy as np
import pytest

from gan_jax.evaluation import classifier as classifier_lib
from gan_jax.evaluation import image_evaluation
from gan_jax.data import DATASETS
from gan_jax.data import pipeline as pipeline_lib

# Stands for a data dir holding the sample: `load_split` serves it from memory.
SAMPLE_DATA_DIR = "<tests/data/mnist_sample.npz>"
COUNT = 200  # of the sample's 500 per split: the metrics must take the first ones


@pytest.fixture(scope="module")
def digits(real_sample):
  """MNIST's first real test and training digits, read by the evaluation as
  if from a prepared data dir; the evaluation's caches are emptied after."""
  sample = real_sample("mnist")
  read_prepared = pipeline_lib.load_split

  def load_split(spec, split, data_dir):
    if data_dir != SAMPLE_DATA_DIR:
      return read_prepared(spec, split, data_dir)
    assert spec.name == "mnist"
    return {"image": sample[f"{split}_image"], "label": sample[f"{split}_label"]}

  with pytest.MonkeyPatch.context() as patch:
    patch.setattr(pipeline_lib, "load_split", load_split)
    yield sample
  image_evaluation.reference_features.cache_clear()
  image_evaluation.floor_metrics.cache_clear()


def symmetric(images):
  return images.astype(np.float32) / 127.5 - 1.0


def metrics(samples, **kwargs):
  return image_evaluation.reference_metrics(DATASETS.get("mnist"), samples, SAMPLE_DATA_DIR,
                                            **kwargs)


@pytest.fixture(scope="module")
def real_test_metrics(digits):
  """The first test digits scored against themselves, with their labels."""
  return metrics(symmetric(digits["test_image"][:COUNT]), labels=digits["test_label"][:COUNT])


def test_reference_features_are_the_classifiers_features_of_the_first_real_images(digits):
  reference = image_evaluation.reference_features("mnist", SAMPLE_DATA_DIR, COUNT)
  assert reference.classifier.name == "mnist"
  for split, features in (("test", reference.test_features),
                          ("train", reference.train_features)):
    expected, _ = classifier_lib.features_and_probabilities(
        reference.classifier, symmetric(digits[f"{split}_image"][:COUNT]), shard=False)
    assert features.shape == (COUNT, reference.classifier.feature_dim)
    np.testing.assert_allclose(features, expected, rtol=1e-5, atol=1e-5)


def test_real_test_digits_against_themselves_match_perfectly(digits, real_test_metrics):
  results = real_test_metrics
  assert abs(results["fid"]) < 1e-6 * results["floor/fid"]
  assert results["precision"] == results["recall"] == results["coverage"] == 1.0
  assert results["num_real"] == results["num_generated"] == COUNT
  assert results["extractor"] == "mnist"
  assert results["extractor_sha256"] == image_evaluation.reference_classifier(
      "mnist").provenance["sha256"]


def test_class_shares_and_conditional_accuracy_follow_the_true_labels(digits,
                                                                       real_test_metrics):
  results = real_test_metrics
  labels = digits["test_label"][:COUNT]
  _, probabilities = classifier_lib.features_and_probabilities(
      image_evaluation.reference_classifier("mnist"), symmetric(digits["test_image"][:COUNT]))
  predicted = probabilities.argmax(-1)
  assert results["conditional_accuracy"] == pytest.approx(np.mean(predicted == labels))
  assert results["conditional_accuracy"] >= 0.95
  label_shares = np.bincount(labels, minlength=10) / COUNT
  shares = np.array([results[f"class_share/{k}"] for k in range(10)])
  np.testing.assert_allclose(shares, np.bincount(predicted, minlength=10) / COUNT)
  # A 95 % classifier moves at most 5 % of the samples between classes.
  assert np.abs(shares - label_shares).sum() <= 2 * 0.05
  shuffled = np.random.default_rng(0).permutation(labels)
  assert metrics(symmetric(digits["test_image"][:COUNT]), labels=shuffled,
                 with_floor=False)["conditional_accuracy"] < 0.3


def test_real_training_digits_score_exactly_the_floor(digits):
  results = metrics(symmetric(digits["train_image"][:COUNT]))
  floor = image_evaluation.floor_metrics("mnist", SAMPLE_DATA_DIR, COUNT, 0)
  assert set(floor) <= set(results)
  for key, value in floor.items():
    assert results[f"floor/{key}"] == value
    assert results[key] == pytest.approx(value, rel=1e-9, abs=1e-12), key
  # Two samples of the same digits are close, not identical.
  assert 0 < floor["fid"] and floor["precision"] > 0.6 and floor["recall"] > 0.6


def test_noised_and_collapsed_sets_score_far_worse_than_the_floor(digits):
  real = symmetric(digits["test_image"][:COUNT])
  noised = np.clip(real + np.random.default_rng(0).normal(0, 0.75, real.shape), -1, 1)
  ones = symmetric(digits["train_image"][digits["train_label"] == 1])
  collapsed = np.resize(ones, real.shape)  # every sample a 1
  noised_results = metrics(noised.astype(np.float32))
  collapsed_results = metrics(collapsed, with_floor=False)
  floor = noised_results["floor/fid"]
  # Measured: floor FID 46, recall 0.81; noised 244 and 0.16; collapsed far beyond.
  assert noised_results["fid"] > 4 * floor
  assert noised_results["recall"] < 0.5 * noised_results["floor/recall"]
  assert collapsed_results["fid"] > 10 * floor
  assert collapsed_results["recall"] < 0.3
  assert collapsed_results["class_share/1"] > 0.95
  assert collapsed_results["classifier_score"] < 1.5
