"""Per-example pieces of a family's update: PacGAN packing and example keys.

Inside `replica_update` (run under `jax.shard_map`, see `gan_jax.step`) each
replica holds its shard of the batch; the global batch mean it reduces with is
`gan_jax.sharding.batch_mean`.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp


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
