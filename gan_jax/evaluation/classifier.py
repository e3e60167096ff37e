"""Small CNN classifiers of 28x28 grey images: the feature extractors behind
the image-quality metrics (Fréchet distance, Inception-style scores).

Inception weights cannot be fetched here, so, as TF-GAN does for MNIST, the
metrics use a classifier trained in this repo on the dataset itself. Its
penultimate layer (128 units after ReLU) gives the features; its softmax
gives the class probabilities.

Committed weights live in `gan_jax/evaluation/classifier_weights/<name>.msgpack`
(flax serialisation of the params), beside `<name>.json`: how they were made
(dataset, split sizes, seed, epochs, test accuracy, the exact command,
package versions) and the file's SHA-256. `load_classifier` refuses weights
whose hash differs from the recorded one, so a metric can never silently
change because its weights did. `experiments/train_classifier.py` trains
the network and makes both files.

Inputs are images in [-1, 1] (the GAN's range); `features_and_probabilities`
maps other ranges and sizes there first.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import importlib.resources
import json
import math
from typing import Any, Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from etils import epath
from flax import serialization
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from gan_jax.data import images as image_lib
from gan_jax.sharding import DATA_AXIS, make_mesh, replicated

PyTree = Any

NAMES = ("mnist", "fashion_mnist")
IMAGE_SHAPE = (28, 28, 1)
VALUE_RANGE = (-1.0, 1.0)
# What every provenance file records; `load_classifier` checks for each.
PROVENANCE_FIELDS = (
    "name", "dataset", "splits", "seed", "epochs", "batch_size", "learning_rate",
    "max_shift", "flip", "architecture", "num_params", "test_accuracy", "train_seconds",
    "command", "versions", "weights_file", "sha256",
)


class ClassifierWeightsError(ValueError):
  """Committed classifier weights are missing, altered or inconsistent."""


def weights_dir() -> str:
  return str(importlib.resources.files("gan_jax.evaluation") / "classifier_weights")


class ConvNet(nn.Module):
  """A stride-2 conv + ReLU per width (28 -> 14 -> 7 -> 4), then a dense ReLU
  layer (the features) and the class logits.

  Strided convs rather than conv + max-pool: on CPU that is about 5x cheaper
  per step (a quarter of the multiply-adds, and no select-and-scatter in the
  gradient), which keeps training to minutes on two cores. The 5x5 kernels
  of the first two layers cost little more than 3x3 ones at these widths.
  """

  widths: Sequence[int] = (32, 64, 128)
  kernel_sizes: Sequence[int] = (5, 5, 3)
  feature_dim: int = 128
  num_classes: int = 10
  dropout_rate: float = 0.3

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool = False) -> tuple[jax.Array, jax.Array]:
    for width, size in zip(self.widths, self.kernel_sizes, strict=True):
      x = nn.relu(nn.Conv(width, (size, size), strides=(2, 2))(x))
    features = nn.relu(nn.Dense(self.feature_dim)(x.reshape(x.shape[0], -1)))
    hidden = nn.Dropout(self.dropout_rate, deterministic=not train)(features)
    return features, nn.Dense(self.num_classes)(hidden)


def architecture(model: ConvNet) -> dict:
  return {"widths": list(model.widths), "kernel_sizes": list(model.kernel_sizes),
          "feature_dim": model.feature_dim,
          "num_classes": model.num_classes, "dropout_rate": model.dropout_rate}


def init_params(model: ConvNet, key: jax.Array,
                image_shape: tuple[int, ...] = IMAGE_SHAPE) -> PyTree:
  # One jitted program: run eagerly, every initializer compiles on its own.
  return jax.jit(model.init)(key, jnp.zeros((1, *image_shape)))["params"]


def count_params(params: PyTree) -> int:
  return int(sum(np.size(leaf) for leaf in jax.tree.leaves(params)))


# ---------------------------------------------------------------------------
# Committed weights.


@dataclasses.dataclass(frozen=True)
class Classifier:
  name: str
  model: ConvNet
  params: PyTree
  provenance: dict

  @property
  def feature_dim(self) -> int:
    return self.model.feature_dim


def sha256(data: bytes) -> str:
  return hashlib.sha256(data).hexdigest()


def _paths(name: str, directory: Optional[str]) -> tuple[epath.Path, epath.Path]:
  directory = epath.Path(directory or weights_dir())
  return directory / f"{name}.msgpack", directory / f"{name}.json"


def save_classifier(name: str, model: ConvNet, params: PyTree, provenance: dict,
                    directory: Optional[str] = None) -> dict:
  """Writes `<name>.msgpack` and `<name>.json` (the provenance, completed with
  the architecture, parameter count, file name and hash); returns the JSON."""
  weights_path, json_path = _paths(name, directory)
  weights_path.parent.mkdir(parents=True, exist_ok=True)
  data = serialization.to_bytes(jax.device_get(params))
  record = {**provenance, "name": name, "architecture": architecture(model),
            "num_params": count_params(params),
            "weights_file": weights_path.name, "sha256": sha256(data)}
  missing = [k for k in PROVENANCE_FIELDS if k not in record]
  if missing:
    raise ValueError(f"Provenance of '{name}' lacks {missing}.")
  weights_path.write_bytes(data)
  json_path.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
  return record


def load_provenance(name: str, directory: Optional[str] = None) -> dict:
  _, json_path = _paths(name, directory)
  if not json_path.exists():
    raise ClassifierWeightsError(
        f"No classifier '{name}' in {json_path.parent} (committed: "
        f"{', '.join(NAMES)}). Train one with:\n"
        f"  python experiments/train_classifier.py --dataset={name}")
  record = json.loads(json_path.read_text())
  missing = [k for k in PROVENANCE_FIELDS if k not in record]
  if missing:
    raise ClassifierWeightsError(f"{json_path} lacks the provenance fields {missing}.")
  return record


def load_classifier(name: str, directory: Optional[str] = None) -> Classifier:
  """The committed classifier `name`, after checking its weights' SHA-256
  against the one its provenance JSON records."""
  weights_path, json_path = _paths(name, directory)
  provenance = load_provenance(name, directory)
  data = weights_path.read_bytes()
  actual = sha256(data)
  if actual != provenance["sha256"]:
    raise ClassifierWeightsError(
        f"SHA-256 mismatch for classifier weights {weights_path}: expected "
        f"{provenance['sha256']} (recorded in {json_path}), got {actual}. The file "
        f"is corrupt or was changed without its provenance; restore it or rerun:\n"
        f"  {provenance['command']}")
  fields = provenance["architecture"]
  model = ConvNet(**{**fields, "widths": tuple(fields["widths"]),
                     "kernel_sizes": tuple(fields["kernel_sizes"])})
  expected = jax.eval_shape(functools.partial(init_params, model), jax.random.PRNGKey(0))
  params = serialization.msgpack_restore(data)
  shapes = jax.tree.map(lambda x: tuple(np.shape(x)), params)
  if shapes != jax.tree.map(lambda x: tuple(x.shape), expected):
    raise ClassifierWeightsError(
        f"{weights_path} does not hold the parameters of the architecture "
        f"{provenance['architecture']} that {json_path} records.")
  return Classifier(name=name, model=model, params=jax.tree.map(jnp.asarray, params),
                    provenance=provenance)


# ---------------------------------------------------------------------------
# Features and probabilities.


def to_classifier_input(images, value_range: tuple[float, float] = VALUE_RANGE) -> np.ndarray:
  """(N, H, W[, 1]) images with values in `value_range` -> float32
  (N, 28, 28, 1) in [-1, 1], resized (antialiased linear) if need be."""
  x = np.asarray(images, np.float32)
  if x.ndim == 3:
    x = x[..., None]
  if x.ndim != 4 or x.shape[-1] != 1:
    raise ValueError(f"The classifiers take grey images (N, H, W, 1); got shape {x.shape}.")
  low, high = value_range
  intensity = (x - low) / (high - low)
  if x.shape[1:3] != IMAGE_SHAPE[:2]:
    intensity = np.clip(image_lib.resize(intensity, *IMAGE_SHAPE[:2]), 0.0, 1.0)
  return 2 * intensity - 1


def _forward(model: ConvNet, params: PyTree, images: jax.Array):
  features, logits = model.apply({"params": params}, images)
  return features, jax.nn.softmax(logits.astype(jnp.float32), axis=-1)


# `model` is static (flax modules hash by their fields): one compilation per
# architecture, batch shape and sharding.
_jitted_forward = jax.jit(_forward, static_argnums=0)


def features_and_probabilities(classifier: Classifier, images, batch_size: int = 500, *,
                               value_range: tuple[float, float] = VALUE_RANGE,
                               shard: bool = True) -> tuple[np.ndarray, np.ndarray]:
  """Penultimate features (N, feature_dim) and class probabilities (N, 10).

  Batches of one fixed size (the last one padded) keep it to one compiled
  program. With `shard`, each batch is split over every local device along
  the batch axis; when the batch size is not a multiple of the device count,
  it runs on one device instead.
  """
  x = to_classifier_input(images, value_range)
  count = len(x)
  if not count:
    raise ValueError("features_and_probabilities needs at least one image.")
  devices = jax.local_devices() if shard else jax.local_devices()[:1]
  if batch_size % len(devices):
    devices = devices[:1]
  # No bigger than needed for a small N, but still a multiple of the devices.
  batch_size = min(batch_size, math.ceil(count / len(devices)) * len(devices))
  mesh = make_mesh(devices)
  params = jax.device_put(classifier.params, replicated(mesh))
  batch_sharding = NamedSharding(mesh, P(DATA_AXIS))
  padded = np.zeros((math.ceil(count / batch_size) * batch_size, *x.shape[1:]), np.float32)
  padded[:count] = x
  outputs = [
      _jitted_forward(classifier.model, params,
                      jax.device_put(padded[start:start + batch_size], batch_sharding))
      for start in range(0, len(padded), batch_size)]
  features, probabilities = (np.concatenate([np.asarray(o[i]) for o in outputs])[:count]
                             for i in (0, 1))
  return features, probabilities
