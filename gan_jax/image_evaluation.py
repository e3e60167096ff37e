"""Image-quality metrics on a classifier trained in this repo (no Inception).

For datasets with a committed reference classifier (`gan_jax.classifier`),
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

from gan_jax import classifier as classifier_lib
from gan_jax import feature_metrics
from gan_jax.data import DATASETS, DatasetSpec, images
from gan_jax.data import pipeline as pipeline_lib

REFERENCE_SPLIT = "test"
FLOOR_SPLIT = "train"


def has_reference_classifier(spec: DatasetSpec) -> bool:
  return spec.name in classifier_lib.NAMES


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
  classifier = classifier_lib.load_classifier(dataset_name)

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
