"""Image-quality metrics on a classifier trained in this repo (no Inception).

For datasets with a committed reference classifier (`evaluation.classifier`),
generated images and real test images go through the classifier; its
penultimate features give the Fréchet distance, KID, precision/recall and
density/coverage, its probabilities the classifier score and, for
conditional models, the share of samples classified as the requested class.

Every report carries a real-vs-real floor: the first N training images
against the first N test images, N the number of generated samples, through
the same metrics. A generator cannot be told apart from the data by a
metric value at or below that floor.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Optional

import numpy as np

from gan_jax.data import DATASETS, DatasetSpec, images, stacked_mnist
from gan_jax.data import pipeline as pipeline_lib
from gan_jax.evaluation import classifier as classifier_lib
from gan_jax.evaluation import feature_metrics
from gan_jax.evaluation.mixture_metrics import reverse_kl_to_uniform

REFERENCE_SPLIT = "test"
FLOOR_SPLIT = "train"


# Datasets whose images stack digits as channels (Stacked MNIST): each channel
# goes through the named classifier, and the digit triple is the mode.
CHANNEL_CLASSIFIERS = {"stacked_mnist": "mnist"}


@functools.lru_cache(maxsize=None)
def reference_classifier(name: str) -> classifier_lib.Classifier:
  """The committed classifier, read and hash-checked once per process."""
  return classifier_lib.load_classifier(name)


def has_reference_classifier(spec: DatasetSpec) -> bool:
  return spec.name in classifier_lib.NAMES or spec.name in CHANNEL_CLASSIFIERS


@dataclasses.dataclass(frozen=True)
class ReferenceFeatures:
  """Classifier features of real images: the reference set and the floor's."""

  classifier: classifier_lib.Classifier
  test_features: np.ndarray
  train_features: np.ndarray


@functools.lru_cache(maxsize=4)
def reference_features(dataset_name: str, data_dir: str, count: int) -> ReferenceFeatures:
  """Features of the first `count` real images of each split, at native
  resolution and in grey levels, whatever a model's own preprocessing (a
  binarised-data VAE and a GAN are compared against the same images).
  Cached: evaluations during training reuse them."""
  spec = images.configure(DATASETS.get(dataset_name), 0, "symmetric", seed=0)
  classifier = reference_classifier(dataset_name)

  def features(split):
    real = pipeline_lib.load_eval_split(spec, split, data_dir)["x"][:count]
    return classifier_lib.features_and_probabilities(classifier, real,
                                                     value_range=spec.value_range)[0]

  return ReferenceFeatures(classifier, features(REFERENCE_SPLIT), features(FLOOR_SPLIT))


def _metric_options(count: int, seed: int) -> dict:
  # KID subsets of at most 1000, as Binkowski et al.
  return dict(seed=seed, kid_subset_size=min(1000, count))


@functools.lru_cache(maxsize=4)
def floor_metrics(dataset_name: str, data_dir: str, count: int, seed: int) -> dict:
  """Real training images against the real test images: fixed for a run, so
  computed once rather than at every in-training evaluation."""
  reference = reference_features(dataset_name, data_dir, count)
  return feature_metrics.all_feature_metrics(reference.test_features,
                                             reference.train_features,
                                             **_metric_options(count, seed))


def classifier_metrics(spec: DatasetSpec, samples: np.ndarray, data_dir: str, *,
                       labels: Optional[np.ndarray] = None, seed: int = 0,
                       with_floor: bool = True) -> dict:
  """Metrics of generated `samples` (in the dataset's value range) against the
  first len(samples) real test images; `floor/...` is the same for real
  training images. Includes the extractor's name and hash."""
  count = len(samples)
  reference = reference_features(spec.name, data_dir, count)
  if len(reference.test_features) < count:
    raise ValueError(f"{count} samples, but the {REFERENCE_SPLIT} split has only "
                     f"{len(reference.test_features)} images; use at most that many.")
  fake_features, fake_probs = classifier_lib.features_and_probabilities(
      reference.classifier, samples, value_range=spec.value_range)
  results = feature_metrics.all_feature_metrics(reference.test_features, fake_features,
                                                fake_probs, **_metric_options(count, seed))
  if labels is not None:
    results["conditional_accuracy"] = float(np.mean(np.argmax(fake_probs, -1) == labels))
  if with_floor:
    floor = floor_metrics(spec.name, data_dir, count, seed)
    results.update({f"floor/{k}": v for k, v in floor.items()})
  results.update(extractor=reference.classifier.name,
                 extractor_sha256=reference.classifier.provenance["sha256"],
                 reference_split=REFERENCE_SPLIT, floor_split=FLOOR_SPLIT,
                 num_real=count, num_generated=count)
  return results


def channel_digits(classifier: classifier_lib.Classifier, images_: np.ndarray,
                   value_range: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
  """Each channel of (N, H, W, C) images classified on its own: the (N, C)
  predicted classes and the (N, C) probabilities of those classes."""
  n, height, width, channels = images_.shape
  per_channel = np.moveaxis(np.asarray(images_), -1, 1).reshape(n * channels, height, width, 1)
  _, probs = classifier_lib.features_and_probabilities(classifier, per_channel,
                                                       value_range=value_range)
  return (probs.argmax(-1).reshape(n, channels), probs.max(-1).reshape(n, channels))


def stacked_mnist_modes(digits: np.ndarray) -> dict:
  """Modes covered and reverse KL for Stacked MNIST (Lin et al. 2018).

  `digits` is (N, 3): a pretrained MNIST classifier's digit for each colour
  channel of each generated image. The triple names one of 1000 modes; the
  reverse KL is KL(generated mode histogram || uniform over 1000).
  """
  digits = np.asarray(digits)
  if digits.ndim != 2 or digits.shape[1] != 3:
    raise ValueError(f"digits must be (examples, 3), got shape {digits.shape}")
  if digits.size and (digits.min() < 0 or digits.max() > 9):
    raise ValueError("digits must lie in 0..9")
  counts = np.bincount(stacked_mnist.mode_of(digits), minlength=stacked_mnist.NUM_MODES)
  return {"modes": int(np.sum(counts > 0)), "reverse_kl": reverse_kl_to_uniform(counts)}


@functools.lru_cache(maxsize=4)
def stacked_floor(dataset_name: str, data_dir: str, count: int) -> dict:
  """Modes and KL of the first `count` real training stacks, through the same
  classifier: what a generator matching the data would score."""
  spec = images.configure(DATASETS.get(dataset_name), 0, "symmetric", seed=0)
  real = pipeline_lib.load_eval_split(spec, FLOOR_SPLIT, data_dir, limit=count)["x"]
  classifier = reference_classifier(CHANNEL_CLASSIFIERS[dataset_name])
  digits, _ = channel_digits(classifier, real, spec.value_range)
  return stacked_mnist_modes(digits)


def stacked_mode_metrics(spec: DatasetSpec, samples: np.ndarray, data_dir: str, *,
                         with_floor: bool = True) -> dict:
  """Stacked MNIST: modes covered (of 1000) and KL(generated || uniform) from
  the per-channel digits of `samples`, with the real-data floor and the
  extractor's provenance. PacGAN counts modes on 26,000 samples."""
  classifier = reference_classifier(CHANNEL_CLASSIFIERS[spec.name])
  digits, confidence = channel_digits(classifier, samples, spec.value_range)
  results = stacked_mnist_modes(digits)
  # How digit-like the channels are: a channel of noise is classified too.
  results["channel_confidence"] = float(confidence.mean())
  if with_floor:
    floor = stacked_floor(spec.name, data_dir, len(samples))
    results.update({f"floor/{k}": v for k, v in floor.items()})
  results.update(extractor=classifier.name, extractor_sha256=classifier.provenance["sha256"],
                 floor_split=FLOOR_SPLIT, num_generated=len(samples))
  return results


def reference_metrics(spec: DatasetSpec, samples: np.ndarray, data_dir: str, *,
                      labels: Optional[np.ndarray] = None, seed: int = 0,
                      with_floor: bool = True) -> dict:
  """The classifier metrics that fit `spec`: stacked-digit modes, or the
  feature metrics against real test images."""
  if spec.name in CHANNEL_CLASSIFIERS:
    return stacked_mode_metrics(spec, samples, data_dir, with_floor=with_floor)
  return classifier_metrics(spec, samples, data_dir, labels=labels, seed=seed,
                            with_floor=with_floor)
