"""Standard FID, KID and precision/recall on the FID Inception's features.

A `FeatureSet` is what a metric needs of one side: the 2048-d features (for
KID and precision/recall) and their mean and covariance (for FID), with the
count and the weights' hash. Sets come from images, from a prepared dataset
split, or from a saved statistics file (`save_stats`; a file holding only
`mu` and `sigma`, as pytorch-fid writes, gives FID alone).

Features of a dataset split are computed once and cached in the data dir
(`<data_dir>/inception/stats/`), under a key of everything that changes
them: dataset, split, image count, the weights' SHA-256, the resize and
`FEATURES_VERSION` (bumped when this code changes the numbers).

The formulas are `evaluation.feature_metrics`'s: FID, KID (subsets of at most
1000, its standard error over 100 subsets) and precision/recall with k = 3.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
from typing import Optional

import numpy as np
from etils import epath

from gan_jax import storage
from gan_jax.evaluation import feature_metrics, inception, inception_weights

FEATURES_VERSION = 1
KID_SUBSET_SIZE = 1000
PRECISION_RECALL_K = 3
STATS_SUBDIR = os.path.join(inception_weights.WEIGHTS_SUBDIR, "stats")


@dataclasses.dataclass(frozen=True)
class FeatureSet:
  mu: np.ndarray
  sigma: np.ndarray
  count: int
  weights_sha256: str
  features: Optional[np.ndarray] = None  # None for mean-and-covariance files

  @classmethod
  def from_features(cls, features: np.ndarray, weights_sha256: str) -> "FeatureSet":
    features = np.asarray(features, np.float64)
    if len(features) < 2:
      raise ValueError("FID needs at least 2 images per side.")
    return cls(features.mean(0), np.cov(features, rowvar=False), len(features),
               weights_sha256, features.astype(np.float32))


def image_features(extractor: inception.InceptionExtractor, images,
                   value_range: tuple[float, float]) -> FeatureSet:
  return FeatureSet.from_features(
      inception.features(extractor, images, value_range=value_range), extractor.sha256)


def save_stats(path: str, feature_set: FeatureSet, **extra) -> None:
  """An .npz of mu, sigma (as pytorch-fid's), the features, count and hash."""
  fields = dict(mu=feature_set.mu, sigma=feature_set.sigma, count=feature_set.count,
                weights_sha256=feature_set.weights_sha256, resize=inception.RESIZE,
                features_version=FEATURES_VERSION,
                **{k: json.dumps(v) for k, v in extra.items()})
  if feature_set.features is not None:
    fields["features"] = feature_set.features
  storage.write_atomically(storage.resolve(path, "stats file"),
                           lambda f: np.savez(f, **fields))


def is_stats_file(path: str) -> bool:
  if not str(path).endswith(".npz"):
    return False
  with epath.Path(path).open("rb") as f, np.load(f) as stored:
    return "mu" in stored and "sigma" in stored


def load_stats(path: str) -> FeatureSet:
  with epath.Path(path).open("rb") as f, np.load(f) as stored:
    features = stored["features"] if "features" in stored else None
    mu, sigma = stored["mu"], stored["sigma"]
    count = int(stored["count"]) if "count" in stored else (
        len(features) if features is not None else 0)
    sha = str(stored["weights_sha256"]) if "weights_sha256" in stored else "unknown"
  if mu.shape != (inception.FEATURE_DIM,) or sigma.shape != (inception.FEATURE_DIM,) * 2:
    raise ValueError(f"{path}: mu and sigma must be ({inception.FEATURE_DIM},) and "
                     f"({inception.FEATURE_DIM}, {inception.FEATURE_DIM}); got "
                     f"{mu.shape} and {sigma.shape}.")
  return FeatureSet(mu, sigma, count, sha, features)


def split_stats_path(data_dir: str, dataset: str, split: str, count: int,
                     weights_sha256: str) -> epath.Path:
  key = json.dumps({"dataset": dataset, "split": split, "count": count,
                    "weights_sha256": weights_sha256, "resize": inception.RESIZE,
                    "features_version": FEATURES_VERSION}, sort_keys=True)
  digest = hashlib.sha256(key.encode()).hexdigest()[:16]
  return epath.Path(data_dir) / STATS_SUBDIR / f"{dataset}-{split}-{count}-{digest}.npz"


def _cached_longer_prefix(data_dir: str, dataset: str, split: str, count: int,
                          weights_sha256: str) -> Optional[FeatureSet]:
  """A cached set of more of the split's first images, under the same key
  otherwise: its first `count` features are this set's (images are taken in
  order), so they need not be computed again."""
  directory = epath.Path(data_dir) / STATS_SUBDIR
  if not directory.exists():
    return None
  for path in sorted(directory.glob(f"{dataset}-{split}-*.npz")):
    longer = path.name[len(f"{dataset}-{split}-"):].split("-")[0]
    if (longer.isdigit() and int(longer) > count
        and path == split_stats_path(data_dir, dataset, split, int(longer), weights_sha256)):
      feature_set = load_stats(path)
      if feature_set.features is not None:
        return feature_set
  return None


def split_features(extractor: inception.InceptionExtractor, dataset: str, split: str,
                   data_dir: str, count: Optional[int] = None) -> FeatureSet:
  """Features of the first `count` (default: all) uint8 images of a prepared
  split, from the cache when it has them."""
  from gan_jax.data import DATASETS
  from gan_jax.data import pipeline as pipeline_lib

  spec = DATASETS.get(dataset)
  if not spec.is_image:
    raise ValueError(f"Dataset '{dataset}' holds no images.")
  images = None
  if count is None:
    images = pipeline_lib.load_split(spec, split, data_dir)["image"]
    count = len(images)
  path = split_stats_path(data_dir, dataset, split, count, extractor.sha256)
  if path.exists():
    return load_stats(path)
  longer = _cached_longer_prefix(data_dir, dataset, split, count, extractor.sha256)
  if longer is not None:
    return FeatureSet.from_features(longer.features[:count], longer.weights_sha256)
  if images is None:
    images = pipeline_lib.load_split(spec, split, data_dir)["image"]
  if len(images) < count:
    raise ValueError(f"{dataset}:{split} has {len(images)} images, fewer than {count}.")
  feature_set = image_features(extractor, images[:count], (0.0, 255.0))
  save_stats(path, feature_set, source={"dataset": dataset, "split": split})
  return feature_set


def compare(real: FeatureSet, fake: FeatureSet, seed: int = 0) -> dict:
  """FID, and where both sides have features KID (with its standard error)
  and precision/recall; with the counts and the weights' hash."""
  if real.weights_sha256 != fake.weights_sha256 and "unknown" not in (
      real.weights_sha256, fake.weights_sha256):
    raise ValueError(f"The two sides' features come from different weights "
                     f"({real.weights_sha256[:12]} vs {fake.weights_sha256[:12]}).")
  # The trace term is symmetric: the side with fewer examples goes first.
  first, second = sorted((real, fake), key=lambda side: (side.features is None, side.count))
  results = {"fid": feature_metrics.gaussian_frechet_distance(
      first.mu, first.sigma, second.mu, second.sigma, examples1=first.features)}
  if real.features is not None and fake.features is not None:
    subset = min(KID_SUBSET_SIZE, real.count, fake.count)
    kid, kid_se = feature_metrics.kernel_distance(real.features, fake.features,
                                                  subset_size=subset, seed=seed)
    results.update(kid=kid, kid_se=kid_se, kid_subset_size=subset)
    results.update(feature_metrics.precision_recall(real.features, fake.features,
                                                    k=PRECISION_RECALL_K))
  results.update(num_real=real.count, num_fake=fake.count,
                 weights_sha256=real.weights_sha256, resize=inception.RESIZE)
  return results


# --- In evaluation ----------------------------------------------------------

REFERENCE_SPLIT, FLOOR_SPLIT = "test", "train"


def evaluation_metrics(dataset: str, samples: np.ndarray, value_range: tuple[float, float],
                       data_dir: str, *, seed: int = 0, with_floor: bool = True,
                       weights_path: Optional[str] = None) -> dict:
  """`inception_*` metrics of generated `samples` against the first
  len(samples) test images, and `floor/inception_*` of as many training
  images against them. Weights not prepared: a note saying how, nothing else."""
  weights_dir = data_dir
  if weights_path is None and not inception_weights.is_prepared(weights_dir):
    return {"inception_note": inception_weights.not_prepared_message(weights_dir)}
  start = time.perf_counter()
  extractor = inception.load_extractor(None if weights_path else weights_dir, weights_path)
  count = len(samples)
  real = split_features(extractor, dataset, REFERENCE_SPLIT, data_dir, count)
  fake = image_features(extractor, samples, value_range)
  results = {f"inception_{k}": v for k, v in compare(real, fake, seed).items()
             if k not in ("num_real", "num_fake")}
  if with_floor:
    floor = compare(real, split_features(extractor, dataset, FLOOR_SPLIT, data_dir, count), seed)
    results.update({f"floor/inception_{k}": v for k, v in floor.items()
                    if k in ("fid", "kid", "kid_se", "precision", "recall")})
  results["inception_num_samples"] = count
  results["inception_seconds"] = time.perf_counter() - start
  return results
