"""The model-family contract: every member the loop, evaluation and sampling use.

A family (the GAN in `gan_jax.gan`, the autoencoder in `gan_jax.autoencoder`,
or one of your own registered in `gan_jax.families.FAMILIES`) is a static,
hashable description of a run, built from the config by its registered
constructor `(config, data_shape) -> family`. It closes over jit, so it holds
modules and numbers, never arrays. The state it creates is a
`gan_jax.state.TrainState` whose players it names itself; code outside the
family reaches a player only through `sampling_player`.

`gan_jax.family_check.check_contract` checks a family against this protocol
(`tests/test_family_contract.py` runs it on every registered family); run it
on yours.
"""

from __future__ import annotations

from typing import Any, Optional, Protocol, runtime_checkable

import jax

from gan_jax.state import TrainState

PyTree = Any


@runtime_checkable
class ModelFamily(Protocol):
  # How many real batches one step consumes (a GAN's n_critic: each critic
  # update sees a fresh batch). Batches reach `replica_update` stacked on a
  # leading axis of this length.
  batches_per_step: int
  # Each replica's share of the batch must be a multiple of this (PacGAN).
  pack_size: int
  # The width of the latents `sample` takes.
  latent_dim: int
  # The shape of one example, as the data pipeline delivers it.
  data_shape: tuple[int, ...]
  # 0: unconditional. K > 0: `sample` takes labels in 0..K-1, and evaluation
  # cycles through the classes.
  num_classes: int
  # The player whose parameters `sample` uses; evaluation reads its EMA
  # parameters (`ema_params is not None`) and its scalar parameters from it.
  sampling_player: str
  # True: the family models p(x) and has `evaluate_batch` (below), which
  # scores held-out data; False: it has no such member.
  evaluates_test_set: bool

  def create_state(self, config) -> TrainState:
    """The initial state from `config.seed`; also traced by `jax.eval_shape`
    to restore a checkpoint, so it must be a pure function of the config."""

  def draw_noise(self, key: jax.Array, global_batch_size: int) -> PyTree:
    """Every random draw of one step for the *global* batch, leading axis =
    example (the step shards axis 0 over the devices)."""

  def replica_update(self, state: TrainState, batches: PyTree,
                     noise: PyTree) -> tuple[TrainState, dict]:
    """One step on this replica's shard; averages over the batch with
    `gan_jax.sharding.batch_mean`. Returns the new state (step + 1) and
    scalar metrics, equal on every replica."""

  def sample(self, state: TrainState, latents: jax.Array,
             labels: Optional[jax.Array] = None, use_ema: bool = True) -> jax.Array:
    """Samples in the data's layout from `latents` (batch, latent_dim);
    `labels` (batch,) for conditional families; EMA weights where they exist
    and `use_ema`. Must not depend on how the batch is split over devices."""



# Where `evaluates_test_set`, the family also has
#
#   evaluate_batch(state, x, key, iwae_samples=None) -> dict
#
# returning per-metric sums over the examples of `x` (a test batch), with
# their count under "num_examples"; `key` seeds any sampling it needs.

