"""What a family's per-replica update uses: the global batch mean and packing.

Inside `replica_update` (run under `jax.shard_map`, see `gan_jax.step`) each
replica holds its shard of the batch. `batch_mean` averages over the global
batch, so losses written with it do not depend on the device count, and its
gradient is the cross-replica mean of the local gradients.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jax import lax

from gan_jax.models import DATA_AXIS


def batch_mean(x: jax.Array) -> jax.Array:
  """Mean over the global batch, from inside the per-replica code."""
  return lax.pmean(jnp.mean(x), DATA_AXIS)


def pack(x: jax.Array, pack_size: int) -> jax.Array:
  """PacGAN packing (Lin et al. 2018): m consecutive examples become one,
  concatenated along the last (feature or channel) axis."""
  if pack_size == 1:
    return x
  b, rest = x.shape[0], x.shape[1:]
  x = jnp.reshape(x, (b // pack_size, pack_size, *rest))
  x = jnp.moveaxis(x, 1, -2)
  return jnp.reshape(x, (b // pack_size, *rest[:-1], pack_size * rest[-1]))


def example_keys(key: jax.Array, shape: tuple[int, ...]) -> jax.Array:
  """Raw PRNG keys of shape (*shape, 2), one per example and slot; draw them
  for the global batch (axis 0), so each replica gets its examples' keys."""
  keys = jax.random.split(key, math.prod(shape))
  return jnp.reshape(keys, (*shape, keys.shape[-1]))
