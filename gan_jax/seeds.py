"""The seed axis: `config.num_seeds` independent runs trained as one job.

With `num_seeds = N > 1` the job trains seeds `seed, seed+1, ..., seed+N-1`.
Every leaf of the `TrainState` gains a leading axis of length N, and entry
`i` is exactly what a single-seed run with `seed+i` would hold: its own
initialisation, its own run key (so its own noise) and, unless
`shared_data_order`, its own data order (`data_seeds`). `num_seeds = 1` adds
no axis: the state, the step and the checkpoint are those of a plain run.

Divergence. A seed whose update yields a non-finite metric or state is
frozen (`gan_jax.step`): it keeps its last finite state, including its step
counter, while the others go on. So the checkpoint records it: a seed is
live when its step equals the job's step (`live_seeds`), and a frozen
seed's divergence step is its own step + 1. Frozen seeds are left out of
the mean ± standard error (`summarize`); the job stops only when every seed
has diverged. One seed alone stops at its first non-finite metric, as
before: freezing the only seed would train nothing.
"""

from __future__ import annotations

import math
from typing import Any, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from gan_jax.errors import UserError

PyTree = Any


def num_seeds(config) -> int:
  return int(config.get("num_seeds", 1))


def seed_values(config) -> list[int]:
  """The seeds of the job, in axis order."""
  return [config.seed + i for i in range(num_seeds(config))]


def data_seeds(config) -> list[int]:
  """The seed of each seed's data order: its own, or with `shared_data_order`
  (common random numbers: seeds then differ only in initialisation and
  noise, which lowers the variance of comparisons) the job's first."""
  if config.get("shared_data_order", False):
    return [config.seed] * num_seeds(config)
  return seed_values(config)


def seed_config(config, seed: int):
  """`config` for the single-seed run with `seed`."""
  single = config.copy_and_resolve_references()
  single.seed = seed
  if "num_seeds" in single:
    single.num_seeds = 1
  return single


def create_state(family, config) -> PyTree:
  """The job's initial state: the family's own for one seed, else every seed's
  stacked on a leading axis. Pure in the config, so `jax.eval_shape` of it
  gives the abstract state a checkpoint restores into."""
  if num_seeds(config) == 1:
    return family.create_state(config)
  states = [family.create_state(seed_config(config, s)) for s in seed_values(config)]
  # Leaves only: each state's optimizers are separate (equal) objects, so
  # their tree structures do not compare equal.
  stacked = [jnp.stack(leaves) for leaves in zip(*map(jax.tree.leaves, states))]
  return jax.tree.unflatten(jax.tree.structure(states[0]), stacked)


def seed_state(state: PyTree, index: int) -> PyTree:
  """Seed `index`'s state, without the seed axis."""
  return jax.tree.map(lambda x: x[index], state)


def one_seed(config, state: PyTree, index: int) -> PyTree:
  """Seed `index`'s state of a restored job (the state itself for one seed);
  an index out of range is the user's mistake."""
  count = num_seeds(config)
  if not 0 <= index < count:
    raise UserError(f"seed_index={index} is out of range: this run has {count} seed(s), "
                    f"indices 0..{count - 1}.")
  return state if count == 1 else seed_state(state, index)


def job_step(state: PyTree) -> int:
  """The job's step: the live seeds' (frozen seeds' steps stay behind)."""
  return int(np.max(jax.device_get(state.step)))


def live_seeds(state: PyTree) -> np.ndarray:
  """Bool per seed: not frozen (its step is the job's)."""
  steps = np.asarray(jax.device_get(state.step))
  return steps == steps.max()


def finite_by_seed(tree: PyTree) -> jax.Array:
  """Bool per seed (leading axis): every floating-point value finite."""
  flags = [jnp.all(jnp.isfinite(jnp.reshape(x, (x.shape[0], -1))), axis=1)
           for x in jax.tree.leaves(tree) if jnp.issubdtype(x.dtype, jnp.floating)]
  return jnp.all(jnp.stack(flags), axis=0)


def mean_and_stderr(values: Sequence[float]) -> tuple[float, Optional[float]]:
  """Mean and standard error (sample std / sqrt(n)); no error for n < 2."""
  values = np.asarray(values, np.float64)
  if len(values) < 2:
    return float(values.mean()), None
  with np.errstate(invalid="ignore"):  # an infinite value has no finite spread
    return float(values.mean()), float(values.std(ddof=1) / math.sqrt(len(values)))


def summarize(per_seed: list[dict], seeds: Sequence[int], live: Sequence[bool],
              steps: Sequence[int]) -> dict:
  """Each seed's results, and over the live seeds each numeric metric's mean
  (under its own name) and standard error (`<name>_stderr`)."""
  rows = []
  for index, (results, seed, is_live, step) in enumerate(zip(per_seed, seeds, live, steps)):
    row = {"seed": int(seed), "seed_index": index, **results}
    if not is_live:
      row["diverged_at_step"] = int(step) + 1
    rows.append(row)
  summary: dict = {"num_seeds": len(rows), "seeds": rows}
  kept = [r for r, is_live in zip(per_seed, live) if is_live]
  for name, value in (kept[0] if kept else {}).items():
    if isinstance(value, (int, float)) and not isinstance(value, bool):
      mean, stderr = mean_and_stderr([r[name] for r in kept])
      summary[name] = mean
      if stderr is not None:
        summary[f"{name}_stderr"] = stderr
  summary["num_live_seeds"] = len(kept)
  return summary
