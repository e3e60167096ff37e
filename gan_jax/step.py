"""The compiled, data-parallel train step, generic over the model family.

A model family (`gan_jax.model_family.ModelFamily`, which lists every member
the loop uses) supplies the step three pure pieces:

* `draw_noise(key, global_batch_size)`: every per-example random draw for one
  step (latents, penalty interpolation weights...), leading axis = example.
* `replica_update(state, batches, noise)`: the per-replica update. It sees its
  shard of the batch and of the noise, and reduces over the named axis
  `gan_jax.sharding.DATA_AXIS` (`sharding.batch_mean`), as a pmapped step
  would.
* `batches_per_step`: how many real batches one step consumes (n_critic for
  a GAN, so that each critic update sees a fresh batch).

`make_train_step` runs `replica_update` with `jax.shard_map` over a 1-D mesh
of every device of every process, inside one `jax.jit` with the state donated.

Gradient averaging. Losses are written as means over the *global* batch
(`lax.pmean` of the local mean). The state enters replicated (`P()`), so under
shard_map's replication typing the derivative of such a loss with respect to
the parameters is the cross-replica mean of the local gradients: JAX places
the all-reduce itself, once per gradient, as the transpose of using
replicated parameters on sharded data. Batch-norm moments are averaged over
the same axis inside the models. The result equals the single-device
computation on the global batch up to float round-off, which the multi-device
tests check.

RNG policy. The run key is `PRNGKey(config.seed)` and is never advanced; step
`t` uses `fold_in(run_key, t)`. From that key the family draws all
per-example randomness for the *global* batch before sharding, so replica `r`
gets rows `r*b .. (r+1)*b` of the same arrays whatever the device count:
results do not depend on how many devices share the batch. No key is ever
derived from a replica or process index. Data order is seeded separately by
the input pipeline (see `gan_jax.data.pipeline`).

Seed axis (`num_seeds` > 1, see `gan_jax.seeds`). Every state leaf, batch
and noise array carries a leading seed axis; the step draws each seed's noise
from its own key as above and maps `family.replica_update` over the seeds
inside the `shard_map`, either with `jax.vmap` or by tracing it once per seed
(`gan_jax.backend.seed_map` picks per platform). Inside is where the family's
code already lives: the map only repeats or batches each op, and the
named-axis collectives (`batch_mean`, batch norm) apply per seed unchanged,
so the gradient all-reduce and the 1-vs-N-device equality above hold per
seed, and the donated state stays one replicated pytree. Splitting seeds over
devices (a second mesh axis) would suit many devices; on a few it leaves the
batch axis unsplit, and the small models that gain most from a seed axis are
dispatch-bound, not memory-bound. A batched op may pick other kernels than
its unbatched form, and XLA may fuse an unrolled program differently, so seed
`i` matches a single-seed run within float round-off, not bitwise. A seed
whose update gives a non-finite metric or state keeps its previous state
(frozen; `gan_jax.seeds` says why).
"""

from __future__ import annotations

from typing import Any, Callable, Optional

import jax
import jax.numpy as jnp
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from gan_jax import backend
from gan_jax.model_family import ModelFamily
from gan_jax.registry import ConfigError
from gan_jax.seeds import finite_by_seed
from gan_jax.sharding import BATCH_SPEC, NOISE_SPEC, SEEDED_BATCH_SPEC, SEEDED_NOISE_SPEC
from gan_jax.state import TrainState

PyTree = Any


def check_global_batch(global_batch_size: int, mesh: Mesh, *,
                       per_replica_multiple: int = 1) -> int:
  """Refuses, before anything compiles, a batch the devices cannot split."""
  num_devices = mesh.devices.size
  num_processes = jax.process_count()
  if global_batch_size <= 0:
    raise ConfigError(f"batch_size must be positive, got {global_batch_size}.")
  if global_batch_size % num_devices:
    raise ConfigError(
        f"batch_size={global_batch_size} is not divisible by the {num_devices} "
        f"devices of the mesh ({num_processes} process(es)); use a multiple of "
        f"{num_devices}, e.g. {num_devices * max(1, round(global_batch_size / num_devices))}.")
  per_replica = global_batch_size // num_devices
  if per_replica % per_replica_multiple:
    raise ConfigError(
        f"Each of the {num_devices} devices gets {per_replica} examples, which "
        f"is not a multiple of {per_replica_multiple} (the PacGAN pack size); "
        f"choose batch_size as a multiple of {num_devices * per_replica_multiple}.")
  return per_replica


def make_train_step(family: ModelFamily, mesh: Mesh, *, donate: bool = True,
                    compiler_options: Optional[dict] = None, num_seeds: int = 1,
                    seed_map: Optional[str] = None
                    ) -> Callable[[TrainState, PyTree], tuple[TrainState, dict]]:
  """Returns `train_step(state, batches) -> (state, metrics)`, jitted with
  `compiler_options`; with `num_seeds` > 1 over a leading seed axis, mapped
  by `seed_map`, metrics one value per seed. Both default to
  `gan_jax.backend`'s choice for the mesh's platform."""
  platform = backend.mesh_platform(mesh)
  if compiler_options is None:
    compiler_options = backend.compiler_options(platform)
  seeded = num_seeds > 1
  update = (_seeded_update(family, seed_map or backend.seed_map(platform)) if seeded
            else family.replica_update)
  batch_spec, noise_spec = ((SEEDED_BATCH_SPEC, SEEDED_NOISE_SPEC) if seeded
                            else (BATCH_SPEC, NOISE_SPEC))
  sharded_update = jax.shard_map(
      update, mesh=mesh, in_specs=(P(), batch_spec, noise_spec), out_specs=(P(), P()))

  def train_step(state: TrainState, batches: PyTree):
    global_batch_size = jax.tree.leaves(batches)[0].shape[2 if seeded else 1]

    def draw(rng, step):
      return family.draw_noise(jax.random.fold_in(rng, step), global_batch_size)

    noise = (jax.vmap(draw) if seeded else draw)(state.rng, state.step)
    noise = jax.lax.with_sharding_constraint(noise, NamedSharding(mesh, noise_spec))
    return sharded_update(state, batches, noise)

  return jax.jit(train_step, donate_argnums=(0,) if donate else (),
                 compiler_options=compiler_options or None)


def _over_seeds(update: Callable, seed_map: str) -> Callable:
  """`update` mapped over the leading seed axis of its arguments and results:
  batched by `jax.vmap`, or traced once per seed and stacked."""
  if seed_map == "vmap":
    return jax.vmap(update)

  def unrolled(*args):
    num_seeds = jax.tree.leaves(args)[0].shape[0]
    results = [update(*jax.tree.map(lambda x, i=i: x[i], args)) for i in range(num_seeds)]
    return jax.tree.map(lambda *per_seed: jnp.stack(per_seed), *results)

  return unrolled


def _seeded_update(family: ModelFamily, seed_map: str):
  """The per-replica update over the seed axis. A live seed (step = the
  job's) whose update is finite moves on; any other keeps its state."""

  mapped_update = _over_seeds(family.replica_update, seed_map)

  def update(state: TrainState, batches: PyTree, noise: PyTree):
    new_state, metrics = mapped_update(state, batches, noise)
    live = state.step == jnp.max(state.step)
    moves = live & finite_by_seed(metrics) & finite_by_seed(new_state)

    def choose(new, old):
      return jnp.where(jnp.reshape(moves, (-1,) + (1,) * (new.ndim - 1)), new, old)

    return jax.tree.map(choose, new_state, state), metrics

  return update
