"""The data-parallel layout every layer shares.

One mesh axis, `DATA_AXIS`, runs over every device of every process. Batches
and per-example noise are split along it; parameters and optimizer state are
replicated. Code that runs per replica (a family's `replica_update`, the
models' cross-replica batch norm) reduces over the same axis by name, so the
axis lives here, below the models, the data pipeline and the step, and none
of them imports another to learn it.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

DATA_AXIS = "data"
# Batches enter the step as (batches_per_step, global_batch, ...): shard the
# batch axis.
BATCH_SPEC = P(None, DATA_AXIS)
# Noise leaves (and any other per-example array) are (global_batch, ...).
NOISE_SPEC = P(DATA_AXIS)
# The same with a leading seed axis (a job of several seeds, gan_jax.seeds).
SEEDED_BATCH_SPEC = P(None, *BATCH_SPEC)
SEEDED_NOISE_SPEC = P(None, *NOISE_SPEC)


def make_mesh(devices=None) -> Mesh:
  """A 1-D data-parallel mesh over `devices` (default: every device of every
  process)."""
  devices = jax.devices() if devices is None else devices
  return Mesh(np.asarray(devices), (DATA_AXIS,))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def batch_mean(x: jax.Array) -> jax.Array:
  """Mean over the global batch, from inside per-replica code. Losses written
  with it do not depend on the device count, and its gradient with respect to
  replicated parameters is the cross-replica mean of the local gradients."""
  return lax.pmean(jnp.mean(x), DATA_AXIS)
