"""The training state: one immutable pytree for every model family.

A `TrainState` holds the step, the run's RNG key and a dict of named players
(for a GAN "generator" and "discriminator"; for an autoencoder one player).
Each `Player` carries its parameters, optimizer state, mutable collections
such as batch statistics, and optional EMA parameters. The module's apply
function and the optax transformation are static fields: they are part of the
compiled program, not of the data, so checkpoints hold arrays only.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from flax import struct

from gan_jax.precision import cast_floats, outputs_to_float32

PyTree = Any


@struct.dataclass
class Player:
  apply_fn: Callable = struct.field(pytree_node=False)
  tx: optax.GradientTransformation = struct.field(pytree_node=False)
  params: PyTree
  opt_state: PyTree
  collections: PyTree  # e.g. {"batch_stats": ...}; {} when the model has none
  ema_params: Optional[PyTree] = None
  ema_collections: Optional[PyTree] = None  # the EMA model's own batch statistics
  # None: compute in float32; else the dtype of forward passes (see gan_jax.precision).
  compute_dtype: Any = struct.field(pytree_node=False, default=None)

  @classmethod
  def create(cls, module: nn.Module, tx: optax.GradientTransformation,
             variables: dict, compute_dtype=None) -> "Player":
    params = variables["params"]
    collections = {k: v for k, v in variables.items() if k != "params"}
    return cls(apply_fn=module.apply, tx=tx, params=params,
               opt_state=tx.init(params), collections=collections,
               compute_dtype=compute_dtype)

  def apply(self, params, *inputs, train: bool, **kwargs):
    """Runs the module; returns (outputs, collections after the call).

    Under a compute dtype, parameters and inputs are cast to it and the
    outputs back to float32; the collections keep their own dtype."""
    dtype = self.compute_dtype
    variables = {"params": cast_floats(params, dtype), **self.collections}
    inputs = cast_floats(inputs, dtype)
    if train and self.collections:
      outputs, collections = self.apply_fn(variables, *inputs, train=True,
                                           mutable=list(self.collections), **kwargs)
    else:
      outputs, collections = self.apply_fn(variables, *inputs, train=train,
                                           **kwargs), self.collections
    return outputs_to_float32(outputs, dtype), collections

  def apply_gradients(self, grads, collections=None) -> "Player":
    updates, opt_state = self.tx.update(grads, self.opt_state, self.params)
    return self.replace(
        params=optax.apply_updates(self.params, updates), opt_state=opt_state,
        collections=self.collections if collections is None else collections)


@struct.dataclass
class TrainState:
  step: jax.Array  # int32 scalar: updates done
  rng: jax.Array  # uint32[2]: the run key made from the seed; never advanced
  players: dict[str, Player]

  @classmethod
  def create(cls, seed: int, players: dict[str, Player]) -> "TrainState":
    return cls(step=jnp.zeros((), jnp.int32), rng=jax.random.PRNGKey(seed),
               players=players)


def all_finite(tree: PyTree) -> bool:
  """True when every floating-point leaf is finite (checked before saving)."""
  leaves = [jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree)
            if jnp.issubdtype(jnp.asarray(x).dtype, jnp.floating)]
  return bool(jnp.all(jnp.stack(leaves))) if leaves else True
