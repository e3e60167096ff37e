"""Image batches: uint8 records -> resized, preprocessed float32 arrays.

Records hold uint8 pixels under "image", shaped (H, W, C), and an integer
"label". A batch's pixels become intensities in [0, 1], are resized when the
config asks for another resolution, and then go through a named
preprocessing:

* `symmetric`: 2 * intensity - 1, in [-1, 1]: the range of a tanh generator.
* `unit`: the intensity itself, in [0, 1].
* `dynamic_binarize`: each pixel drawn from Bernoulli(intensity), afresh every
  time the example is drawn: the dynamically binarised MNIST of VAE papers.
* `static_binarize`: the same draw, but made once per record with a fixed
  seed: the protocol for test sets.

The binarising noise is a pure function of (seed, key, pixel), computed by
hashing (see `uniform_noise`). For dynamic binarisation the key is the
example's position in the endless training stream (batch `k`, row `j` of a
global batch of `B` is position `k * B + j`), so a resumed run, or one split
over another number of processes, draws exactly the same pixels. For static
binarisation the key is the record's index in its split.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Optional

import numpy as np

from gan_jax.registry import ConfigError, Registry

# Seed of static binarisation: one fixed binarised test set for every run.
STATIC_SEED = 20080101


@dataclasses.dataclass(frozen=True)
class Preprocessing:
  """Maps intensities in [0, 1] (and uniform noise, if it takes any) to inputs."""

  apply: Callable[[np.ndarray, Optional[np.ndarray]], np.ndarray]
  # What keys the noise: None (no noise), "draw" (the stream position, with
  # the run's seed) or "record" (the record index, with STATIC_SEED).
  noise: Optional[str] = None
  # The preprocessing evaluation splits get instead (None: this one).
  for_eval: Optional[str] = None
  # The range of the values it produces (for pictures of samples).
  value_range: tuple[float, float] = (0.0, 1.0)


def _binarize(intensity, noise):
  return (noise < intensity).astype(np.float32)


PREPROCESSORS: Registry[Preprocessing] = Registry("preprocessing")
PREPROCESSORS.register("symmetric")(
    Preprocessing(lambda p, _: 2 * p - 1, value_range=(-1.0, 1.0)))
PREPROCESSORS.register("unit")(Preprocessing(lambda p, _: p))
PREPROCESSORS.register("dynamic_binarize")(
    Preprocessing(_binarize, noise="draw", for_eval="static_binarize"))
PREPROCESSORS.register("static_binarize")(Preprocessing(_binarize, noise="record"))

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _mix64(z: np.ndarray) -> np.ndarray:
  """SplitMix64's output function: a bijection on uint64 that avalanches."""
  z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
  z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
  return z ^ (z >> np.uint64(31))


def _hash32(x: np.ndarray) -> np.ndarray:
  """Wellons' lowbias32 integer hash, in place on a uint32 array."""
  x ^= x >> np.uint32(16)
  x *= np.uint32(0x7FEB352D)
  x ^= x >> np.uint32(15)
  x *= np.uint32(0x846CA68B)
  x ^= x >> np.uint32(16)
  return x


def uniform_noise(seed: int, keys: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
  """Uniform float32 in [0, 1), shaped (len(keys), *shape); row `i` depends only
  on (seed, keys[i]), so any subset of rows can be computed on its own.

  Each row gets a 64-bit key from SplitMix64; its elements hash that key's
  two halves with their index in 32-bit arithmetic, several times faster in
  NumPy than 64-bit arithmetic per element.
  """
  size = int(np.prod(shape))
  # Arrays throughout: NumPy wraps uint64 array arithmetic silently.
  stream = _mix64(np.array([seed % 2**64], np.uint64))
  rows = _mix64(stream + (np.asarray(keys).astype(np.uint64) + np.uint64(1)) * _GOLDEN)
  low = rows.astype(np.uint32)[:, None]
  high = (rows >> np.uint64(32)).astype(np.uint32)[:, None]
  bits = _hash32(low ^ (np.arange(size, dtype=np.uint32) * np.uint32(0x9E3779B9)))
  bits ^= high
  _hash32(bits)
  bits >>= np.uint32(8)
  return (bits.astype(np.float32) * np.float32(2.0**-24)).reshape(len(rows), *shape)


def resize_matrix(size_in: int, size_out: int) -> np.ndarray:
  """(size_out, size_in) weights of linear resampling, pixel centres at k + 1/2.

  When shrinking, the triangle widens by the scale factor so every input
  pixel contributes (antialiasing). Rows sum to 1, so a constant image stays
  constant, and size_in == size_out gives the identity.
  """
  scale = size_out / size_in
  width = max(1.0, 1.0 / scale)
  centres = (np.arange(size_out) + 0.5) / scale - 0.5
  weights = np.maximum(0.0, 1.0 - np.abs(centres[:, None] - np.arange(size_in)) / width)
  return (weights / weights.sum(1, keepdims=True)).astype(np.float32)


def resize(images: np.ndarray, height: int, width: int) -> np.ndarray:
  """Resizes a float (B, H, W, C) batch to (B, height, width, C)."""
  rows = resize_matrix(images.shape[1], height)
  cols = resize_matrix(images.shape[2], width)
  out = np.einsum("ph,bhwc->bpwc", rows, images, optimize=True)
  return np.einsum("qw,bpwc->bpqc", cols, out, optimize=True)


_INTENSITY = np.arange(256, dtype=np.float32) / 255  # uint8 -> [0, 1], by lookup


def make_preprocess(native_shape: tuple[int, int, int], shape: tuple[int, int, int],
                    preprocessing: Preprocessing, seed: int) -> Callable[[dict], dict]:
  """The batch preprocessing: uint8 `image` records at `native_shape` to
  float32 `x` at `shape`, and `label` to int32.

  Batches carry "index" (record indices) and, while training, "position"
  (stream positions), which key the noise of the binarisations.
  """
  height, width, _ = shape
  same_size = native_shape[:2] == (height, width)

  def preprocess(batch: dict) -> dict:
    intensity = np.take(_INTENSITY, batch["image"])
    if not same_size:
      intensity = np.clip(resize(intensity, height, width), 0.0, 1.0)
    noise = None
    if preprocessing.noise == "draw":
      noise = uniform_noise(seed, batch["position"], shape)
    elif preprocessing.noise == "record":
      noise = uniform_noise(STATIC_SEED, batch["index"], shape)
    x = preprocessing.apply(intensity, noise)
    return {"x": np.asarray(x, np.float32), "label": np.asarray(batch["label"], np.int32)}

  return preprocess


def configure(spec, resolution: int, preprocessing: str, seed: int):
  """`spec` (an image DatasetSpec) at `resolution` (0: native), with training
  and evaluation preprocessing built from the registered `preprocessing`."""
  chosen = PREPROCESSORS.get(preprocessing)
  native = spec.example_shape
  if resolution < 0:
    raise ConfigError(f"dataset.resolution must be >= 0 (0: native), got {resolution}.")
  shape = (resolution, resolution, native[2]) if resolution else native
  eval_choice = PREPROCESSORS.get(chosen.for_eval) if chosen.for_eval else chosen
  return dataclasses.replace(
      spec, example_shape=shape, value_range=chosen.value_range,
      preprocess=make_preprocess(native, shape, chosen, seed),
      eval_preprocess=make_preprocess(native, shape, eval_choice, seed))


def collate_labelled(records: list[dict]) -> dict[str, np.ndarray]:
  """A chunk of decoded records -> the arrays training uses: image and label."""
  return {"image": np.stack([r["image"] for r in records]),
          "label": np.array([r["label"] for r in records], np.int32)}


def center_crop_and_resize(crop: int, size: int) -> Callable[[list], dict]:
  """Collation that keeps a centred `crop` x `crop` square of each image,
  resized to `size` x `size` (unlabelled: every label is 0)."""

  def collate(records: list[dict]) -> dict[str, np.ndarray]:
    images = np.stack([r["image"] for r in records])
    top = (images.shape[1] - crop) // 2
    left = (images.shape[2] - crop) // 2
    square = images[:, top:top + crop, left:left + crop].astype(np.float32)
    small = resize(square, size, size)
    return {"image": np.clip(np.round(small), 0, 255).astype(np.uint8),
            "label": np.zeros(len(records), np.int32)}

  return collate
