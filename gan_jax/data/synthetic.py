"""TFDS builders for the synthetic benchmarks; generated locally, no network.

* `ring8`: 8 Gaussians with means (cos 2*pi*i/8, sin 2*pi*i/8), sigma 0.01.
* `grid25`: 25 Gaussians with means {-4, -2, 0, 2, 4}^2, sigma 0.05.
  (The VEEGAN / PacGAN protocol: Srivastava et al. 2017; Lin et al. 2018.)
* `normal1d`: N(10, 4), mean 10 and variance 4: the explainers' toy data.
* `blobs`: 28x28 grey images of one Gaussian blob whose position on a ring
  is the class (10 classes), with random jitter and width: a tiny labelled
  image set that needs no download, for tests and smoke runs of image models.

Each split is drawn from its own fixed seed, so a prepared dataset is the
same bytes on every machine.
"""

from __future__ import annotations

import itertools

import numpy as np
import tensorflow_datasets as tfds

NUM_TRAIN = 100_000
NUM_TEST = 10_000
_SPLIT_SEEDS = {"train": 20170801, "test": 20170802}


def ring8_means() -> np.ndarray:
  angles = 2 * np.pi * np.arange(8) / 8
  return np.stack([np.cos(angles), np.sin(angles)], axis=1)


def grid25_means() -> np.ndarray:
  coords = (-4.0, -2.0, 0.0, 2.0, 4.0)
  return np.array(list(itertools.product(coords, coords)))


class _PointsBuilder(tfds.core.GeneratorBasedBuilder):
  """Points in DIMENSIONS-D space; subclasses say how to draw them."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "First release."}
  DIMENSIONS: int

  def _info(self):
    return self.dataset_info_from_configs(
        features=tfds.features.FeaturesDict(
            {"x": tfds.features.Tensor(shape=(self.DIMENSIONS,), dtype=np.float32)}),
        supervised_keys=None,
        description=self.__doc__)

  def _split_generators(self, dl_manager):
    del dl_manager
    return {"train": self._generate_examples("train", NUM_TRAIN),
            "test": self._generate_examples("test", NUM_TEST)}

  def _generate_examples(self, split, count):
    points = self._draw(np.random.default_rng(_SPLIT_SEEDS[split]), count)
    for i, point in enumerate(points.astype(np.float32)):
      yield i, {"x": point}

  def _draw(self, rng: np.random.Generator, count: int) -> np.ndarray:
    raise NotImplementedError


class _MixtureBuilder(_PointsBuilder):
  """A 2-D isotropic Gaussian mixture with equal weights."""

  DIMENSIONS = 2
  MEANS: np.ndarray
  STD: float

  def _draw(self, rng, count):
    modes = rng.integers(len(self.MEANS), size=count)
    return self.MEANS[modes] + self.STD * rng.standard_normal((count, self.DIMENSIONS))


class Ring8(_MixtureBuilder):
  """Eight Gaussians on the unit circle, sigma 0.01."""

  MEANS = ring8_means()
  STD = 0.01


class Grid25(_MixtureBuilder):
  """Twenty-five Gaussians on a 5x5 grid with spacing 2, sigma 0.05."""

  MEANS = grid25_means()
  STD = 0.05


class Normal1d(_PointsBuilder):
  """One-dimensional N(10, 4): mean 10, standard deviation 2."""

  DIMENSIONS = 1
  MEAN = 10.0
  STD = 2.0

  def _draw(self, rng, count):
    return self.MEAN + self.STD * rng.standard_normal((count, self.DIMENSIONS))


class Blobs(tfds.core.GeneratorBasedBuilder):
  """28x28x1 uint8 images of a Gaussian blob; the label is its ring position."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "First release."}
  SIZE = 28
  NUM_CLASSES = 10
  COUNTS = {"train": 10_000, "test": 1_000}

  def _info(self):
    return self.dataset_info_from_configs(
        features=tfds.features.FeaturesDict({
            "image": tfds.features.Tensor(shape=(self.SIZE, self.SIZE, 1), dtype=np.uint8),
            "label": tfds.features.ClassLabel(num_classes=self.NUM_CLASSES)}),
        supervised_keys=("image", "label"),
        description=self.__doc__)

  def _split_generators(self, dl_manager):
    del dl_manager
    return {split: self._generate_examples(split, count)
            for split, count in self.COUNTS.items()}

  def _generate_examples(self, split, count):
    rng = np.random.default_rng(_SPLIT_SEEDS[split])
    labels = rng.integers(self.NUM_CLASSES, size=count)
    angles = 2 * np.pi * labels / self.NUM_CLASSES
    centre = (self.SIZE - 1) / 2
    rows = centre + 8 * np.sin(angles) + rng.normal(0, 0.7, count)
    cols = centre + 8 * np.cos(angles) + rng.normal(0, 0.7, count)
    widths = rng.uniform(1.5, 3.0, count)
    grid = np.arange(self.SIZE, dtype=np.float64)
    for i in range(count):
      blob = np.exp(-((grid[:, None] - rows[i]) ** 2 + (grid[None, :] - cols[i]) ** 2)
                    / (2 * widths[i] ** 2))
      image = np.round(255 * blob).astype(np.uint8)[..., None]
      yield i, {"image": image, "label": int(labels[i])}
