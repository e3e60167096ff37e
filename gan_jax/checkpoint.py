"""Checkpoints through Orbax; the only module that touches the Orbax API.

A checkpoint holds the whole `TrainState` (every player's parameters,
optimizer state, batch statistics and EMA weights, the step and the run key)
and the input pipeline's position: the index of the next batch to read.
Saves are asynchronous; a state with a non-finite value is never saved.
"""

from __future__ import annotations

import os
from typing import Any, Optional

import jax
import orbax.checkpoint as ocp
from jax.sharding import NamedSharding

from gan_jax.state import all_finite

CHECKPOINT_SUBDIR = "checkpoints"


class NonFiniteStateError(FloatingPointError):
  """Raised instead of saving a state that holds NaN or Inf."""


class Checkpointer:

  def __init__(self, workdir: str, *, max_to_keep: int = 3, async_save: bool = True):
    self.directory = os.path.join(os.path.abspath(workdir), CHECKPOINT_SUBDIR)
    self._manager = ocp.CheckpointManager(
        self.directory,
        options=ocp.CheckpointManagerOptions(
            max_to_keep=max_to_keep, enable_async_checkpointing=async_save, create=True))

  def latest_step(self) -> Optional[int]:
    return self._manager.latest_step()

  def all_steps(self) -> list[int]:
    return list(self._manager.all_steps())

  def save(self, step: int, state: Any, data_position: int) -> bool:
    """Saves unless `step` is already saved; the caller decides when."""
    if step in self._manager.all_steps():
      return False
    if not all_finite(state):
      raise NonFiniteStateError(
          f"The state at step {step} holds NaN or Inf; not saving it. The last good "
          f"checkpoint (step {self.latest_step()}) is intact in {self.directory}.")
    return self._manager.save(
        step,
        args=ocp.args.Composite(
            state=ocp.args.StandardSave(state),
            data=ocp.args.JsonSave({"position": int(data_position)})),
        force=True)

  def restore(self, abstract_state: Any, sharding: NamedSharding,
              step: Optional[int] = None) -> tuple[Any, int]:
    """Restores (state, data position) at `step` (default: latest).

    `abstract_state` gives the tree and the static fields (for example from
    `jax.eval_shape`); every array is placed with `sharding`.
    """
    step = self.latest_step() if step is None else step
    if step is None or step not in self._manager.all_steps():
      raise FileNotFoundError(
          f"No checkpoint for step {step} in {self.directory}; "
          f"available: {self.all_steps() or 'none'}.")
    target = jax.tree.map(
        lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding), abstract_state)
    restored = self._manager.restore(
        step, args=ocp.args.Composite(state=ocp.args.StandardRestore(target),
                                      data=ocp.args.JsonRestore()))
    return restored["state"], int(restored["data"]["position"])

  def wait(self) -> None:
    self._manager.wait_until_finished()

  def close(self) -> None:
    self._manager.wait_until_finished()
    self._manager.close()
