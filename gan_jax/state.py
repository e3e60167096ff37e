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

  @classmethod
  def create(cls, module: nn.Module, tx: optax.GradientTransformation,
             variables: dict) -> "Player":
    params = variables["params"]
    collections = {k: v for k, v in variables.items() if k != "params"}
    return cls(apply_fn=module.apply, tx=tx, params=params,
               opt_state=tx.init(params), collections=collections)

  def apply(self, params, *inputs, train: bool, **kwargs):
    """Runs the module; returns (outputs, collections after the call).

    The module itself computes in its compute dtype (see gan_jax.precision)."""
    variables = {"params": params, **self.collections}
    if train and self.collections:
      outputs, collections = self.apply_fn(variables, *inputs, train=True,
                                           mutable=list(self.collections), **kwargs)
    else:
      outputs, collections = self.apply_fn(variables, *inputs, train=train,
                                           **kwargs), self.collections
    return outputs, collections

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
