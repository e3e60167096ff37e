"""Differentiable augmentation (DiffAugment, Zhao et al. 2020) for NHWC images.

The same random transform is applied to real and generated images before the
discriminator sees them; since it is differentiable, the generator's gradient
flows back through it. The magnitudes follow the paper's reference code
(`DiffAugment_pytorch.py`), written for images in [-1, 1]:

  color        brightness x + b,             b ~ U[-0.5, 0.5)
               saturation m_c + s (x - m_c),  s ~ U[0, 2)     m_c: mean over channels
               contrast   m + c (x - m),      c ~ U[0.5, 1.5) m: mean over H, W, C
  translation  integer shift of up to round(size / 8) pixels per axis; pixels
               shifted in are 0, the mid-grey of [-1, 1], as in the reference.
  cutout       a square of round(size / 2) pixels per axis set to 0; its centre
               is uniform over the image, so it may be clipped at the border.

Randomness is split in two so results do not depend on the device count:
`draw_augmentation` draws every example's parameters for the global batch
(outside the per-replica code, like `GANFamily.draw_noise`), and
`apply_augmentation` is a pure function of images and parameters, so a replica
applies its shard of the parameters to its shard of the images.

A policy is a comma-separated string or a tuple of names, applied in order;
the empty policy is the identity.
"""

from __future__ import annotations

import dataclasses
import zlib
from typing import Callable, Sequence

import jax
import jax.numpy as jnp

from gan_jax.registry import ConfigError, Registry

Array = jax.Array
Params = dict[str, Array]

TRANSLATION_RATIO = 1 / 8
CUTOUT_RATIO = 1 / 2


@dataclasses.dataclass(frozen=True)
class Augmentation:
  # draw(key, batch_size, height, width) -> per-example params (batch axis first)
  draw: Callable[[Array, int, int, int], Params]
  # apply(images, params) -> images; must not mix examples
  apply: Callable[[Array, Params], Array]


AUGMENTATIONS: Registry[Augmentation] = Registry("augmentation")


def register_augmentation(name: str, draw):
  def decorator(apply):
    AUGMENTATIONS.register(name)(Augmentation(draw, apply))
    return apply

  return decorator


def parse_policy(policy: str | Sequence[str]) -> tuple[str, ...]:
  """The policy's names in order, each checked against `AUGMENTATIONS`."""
  if isinstance(policy, str):
    policy = policy.split(",")
  names = tuple(name.strip() for name in policy if name.strip())
  for name in names:
    AUGMENTATIONS.get(name)
  if len(set(names)) != len(names):
    raise ConfigError(f"Augmentation policy {names} names an augmentation twice.")
  return names


def draw_augmentation(key: Array, batch_size: int, image_shape: Sequence[int],
                      policy: str | Sequence[str]) -> dict[str, Params]:
  """Per-example parameters for the global batch: {name: {param: array}}.

  `image_shape` is one example's (H, W, C). Every array has the batch as its
  leading axis, so slicing all of them along it gives a shard's parameters.
  """
  names = parse_policy(policy)
  if not names:
    return {}
  if len(image_shape) != 3:
    raise ConfigError(f"Augmentation needs (H, W, C) images, got shape {tuple(image_shape)}.")
  height, width = image_shape[0], image_shape[1]
  # A key per name, not per position, so adding one augmentation to a policy
  # leaves the others' draws unchanged.
  return {name: AUGMENTATIONS.get(name).draw(
              jax.random.fold_in(key, zlib.crc32(name.encode())), batch_size, height, width)
          for name in names}


def apply_augmentation(images: Array, params: dict[str, Params],
                       policy: str | Sequence[str]) -> Array:
  """Augments an NHWC batch with its per-example `params`; differentiable in images."""
  for name in parse_policy(policy):
    images = AUGMENTATIONS.get(name).apply(images, params[name])
  return images


def _per_example(values: Array, images: Array) -> Array:
  """(B,) -> (B, 1, 1, 1) in the images' dtype, to broadcast over H, W, C."""
  return jnp.reshape(values, (-1, 1, 1, 1)).astype(images.dtype)


def _draw_color(key, batch_size, height, width):
  del height, width
  b_key, s_key, c_key = jax.random.split(key, 3)
  return {
      "brightness": jax.random.uniform(b_key, (batch_size,), minval=-0.5, maxval=0.5),
      "saturation": jax.random.uniform(s_key, (batch_size,), minval=0.0, maxval=2.0),
      "contrast": jax.random.uniform(c_key, (batch_size,), minval=0.5, maxval=1.5),
  }


@register_augmentation("color", _draw_color)
def color(images: Array, params: Params) -> Array:
  x = images + _per_example(params["brightness"], images)
  channel_mean = jnp.mean(x, axis=3, keepdims=True)
  x = channel_mean + _per_example(params["saturation"], x) * (x - channel_mean)
  image_mean = jnp.mean(x, axis=(1, 2, 3), keepdims=True)
  return image_mean + _per_example(params["contrast"], x) * (x - image_mean)


def _round_fraction(size: int, ratio: float) -> int:
  return int(size * ratio + 0.5)


def _draw_translation(key, batch_size, height, width):
  limit = jnp.array([_round_fraction(height, TRANSLATION_RATIO),
                     _round_fraction(width, TRANSLATION_RATIO)])
  return {"shift": jax.random.randint(key, (batch_size, 2), -limit, limit + 1)}


@register_augmentation("translation", _draw_translation)
def translation(images: Array, params: Params) -> Array:
  """out[i, j] = x[i - dy, j - dx] where that is inside the image, else 0;
  `shift` holds (dy, dx), so positive values move content down and right."""
  _, height, width, _ = images.shape

  def shift_one(image, shift):
    rows = jnp.arange(height) - shift[0]
    cols = jnp.arange(width) - shift[1]
    in_view = (((rows >= 0) & (rows < height))[:, None]
               & ((cols >= 0) & (cols < width))[None, :])
    # Clipped indices keep the gather in range; the mask zeroes what they
    # fetch, and with it their gradient.
    moved = image[jnp.clip(rows, 0, height - 1)][:, jnp.clip(cols, 0, width - 1)]
    return moved * in_view[:, :, None].astype(image.dtype)

  return jax.vmap(shift_one)(images, params["shift"])


def _cutout_size(height: int, width: int) -> tuple[int, int]:
  return _round_fraction(height, CUTOUT_RATIO), _round_fraction(width, CUTOUT_RATIO)


def _draw_cutout(key, batch_size, height, width):
  size = jnp.array(_cutout_size(height, width))
  # The reference's centre range: [0, n] for an even square, [0, n - 1] for an odd one.
  centre = jax.random.randint(key, (batch_size, 2), 0,
                              jnp.array([height, width]) + 1 - size % 2)
  return {"corner": centre - size // 2}


@register_augmentation("cutout", _draw_cutout)
def cutout(images: Array, params: Params) -> Array:
  """Zeroes rows [y, y + h) x cols [x, x + w) (clipped to the image), where
  `corner` holds (y, x) and (h, w) = round(size / 2)."""
  _, height, width, _ = images.shape
  cut_height, cut_width = _cutout_size(height, width)
  top = params["corner"][:, 0, None]
  left = params["corner"][:, 1, None]
  rows = jnp.arange(height)[None, :]
  cols = jnp.arange(width)[None, :]
  cut_rows = (rows >= top) & (rows < top + cut_height)
  cut_cols = (cols >= left) & (cols < left + cut_width)
  keep = ~(cut_rows[:, :, None] & cut_cols[:, None, :])
  return images * keep[..., None].astype(images.dtype)
