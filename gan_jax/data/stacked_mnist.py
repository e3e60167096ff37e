"""Stacked MNIST, the 1000-mode benchmark of Metz et al. (2017) and PacGAN
(Lin et al. 2018): three MNIST digits drawn independently and uniformly,
stacked as the colour channels of one 28x28x3 image. The label is the mode,
100 * d_red + 10 * d_green + d_blue, one of 1000.

The stacks are built from the prepared `mnist` dataset (train stacks from
MNIST's training images, test stacks from its test images), with a fixed seed,
so every preparation writes the same records. 128,000 training stacks, as in
PacGAN's experiments; 10,000 test stacks.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow_datasets as tfds

SIZE = 28
NUM_MODES = 1000
_SEED_OFFSET = {"train": 0, "test": 1}


def mode_of(digits: np.ndarray) -> np.ndarray:
  """(N, 3) digits (red, green, blue) -> (N,) modes 100 * d0 + 10 * d1 + d2,
  in 0..999."""
  return np.asarray(digits, np.int64) @ np.array([100, 10, 1])


def draw_stacks(images: np.ndarray, labels: np.ndarray, count: int,
                seed: int) -> tuple[np.ndarray, np.ndarray]:
  """`count` stacks of three source images drawn with replacement:
  (count, H, W, 3) uint8 images and their (count,) modes."""
  rng = np.random.default_rng(seed)
  picks = rng.integers(len(images), size=(count, 3))
  stacks = np.concatenate([images[picks[:, c]] for c in range(3)], axis=-1)
  return stacks, mode_of(labels[picks])


@dataclasses.dataclass(eq=False)
class StackConfig(tfds.core.BuilderConfig):
  """The source dataset (28x28x1 images labelled 0..9) and the stack counts."""

  source: str = "mnist"
  num_train: int = 128_000
  num_test: int = 10_000
  seed: int = 0


class StackedMnist(tfds.core.GeneratorBasedBuilder):
  """Three MNIST digits as the channels of a 28x28x3 image; 1000 modes."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "First release."}
  BUILDER_CONFIGS = [StackConfig(name="full", description="128,000 train / 10,000 test.")]

  def _info(self):
    return self.dataset_info_from_configs(
        features=tfds.features.FeaturesDict({
            "image": tfds.features.Tensor(shape=(SIZE, SIZE, 3), dtype=np.uint8),
            "label": tfds.features.ClassLabel(num_classes=NUM_MODES)}),
        supervised_keys=("image", "label"),
        homepage="https://arxiv.org/abs/1712.04086",
        description=self.__doc__)

  def _split_generators(self, dl_manager):
    del dl_manager
    from gan_jax.data import DATASETS
    from gan_jax.data import pipeline as pipeline_lib

    config = self.builder_config
    source = DATASETS.get(config.source)
    counts = {"train": config.num_train, "test": config.num_test}
    # Raises DataNotPreparedError with the command, when the source is missing.
    arrays = {split: pipeline_lib.load_split(source, split, str(self._data_dir_root))
              for split in counts}
    return {split: self._generate_examples(arrays[split], count,
                                           config.seed * 2 + _SEED_OFFSET[split])
            for split, count in counts.items()}

  def _generate_examples(self, source: dict, count: int, seed: int):
    if source["image"].shape[1:] != (SIZE, SIZE, 1):
      raise ValueError(f"Stacked MNIST needs {SIZE}x{SIZE}x1 source images, got "
                       f"{source['image'].shape[1:]}.")
    stacks, modes = draw_stacks(source["image"], source["label"], count, seed)
    for i in range(count):
      yield i, {"image": stacks[i], "label": int(modes[i])}
