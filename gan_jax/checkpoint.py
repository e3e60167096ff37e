"""Checkpoints through Orbax; the only module that touches the Orbax API.

A checkpoint holds the whole `TrainState` (every player's parameters,
optimizer state, batch statistics and EMA weights, the step and the run key)
and, as JSON, the input pipeline's position (the index of the next batch to
read) and a SHA-256 digest of every state leaf. Saves are asynchronous; a
state with a non-finite value is never saved.

Verification. A restore checks the state's shapes against the run's, then
every leaf against its recorded digest. `restore_part` reads only the leaves
of a pruned state (sampling needs no optimizer state and no critic), checked
the same way. `restore_latest` (training) walks
back from the newest checkpoint: one that cannot be read or does not match
its digest is moved aside to `checkpoints.rejected/` (kept, never deleted)
with one warning, and the previous one is tried. Shapes that differ from
the config's are the config's fault, not the checkpoint's: that is an error
and nothing is moved.

Retention. `max_to_keep` (config `keep_checkpoints`) applies as checkpoints
are saved: each save keeps the newest `max_to_keep`. Opening a workdir never
deletes anything, so relaunching a finished run (which saves nothing) keeps
all its checkpoints, whatever `keep_checkpoints` says now.
"""

from __future__ import annotations

import functools
import gc
import hashlib
import logging
from typing import Any, Callable, Optional

import jax
import numpy as np
import orbax.checkpoint as ocp
from etils import epath
from jax.sharding import NamedSharding

from gan_jax import multihost, storage
from gan_jax.errors import UserError
from gan_jax.state import all_finite

CHECKPOINT_SUBDIR = "checkpoints"
REJECTED_SUBDIR = "checkpoints.rejected"
log = logging.getLogger("gan_jax")


class NonFiniteStateError(FloatingPointError):
  """Raised instead of saving a state that holds NaN or Inf."""


class CheckpointError(UserError):
  """No usable checkpoint: missing, damaged, or not the config's shapes."""


class _DamagedCheckpoint(Exception):
  """A checkpoint that cannot be read or fails its digest."""


def _leaf_name(path) -> str:
  parts = []
  for entry in path:
    for attribute in ("key", "name", "idx"):
      if hasattr(entry, attribute):
        parts.append(str(getattr(entry, attribute)))
        break
  return "/".join(parts)


def _host_copy(leaf) -> np.ndarray:
  """One full copy of a replicated leaf, without cross-process gathering."""
  if isinstance(leaf, jax.Array):
    return np.asarray(leaf.addressable_data(0))
  return np.asarray(leaf)


def state_digests(state: Any) -> dict[str, str]:
  """{leaf name: SHA-256 of its dtype, shape and bytes}."""
  digests = {}
  for path, leaf in jax.tree_util.tree_flatten_with_path(state)[0]:
    array = np.ascontiguousarray(_host_copy(leaf))
    digest = hashlib.sha256(f"{array.dtype.str}{array.shape}".encode())
    digest.update(array.tobytes())
    digests[_leaf_name(path)] = digest.hexdigest()
  return digests


def _collect_failed_reads() -> None:
  """A failed Orbax read leaves asyncio tasks holding its exception; asyncio
  logs each, with a traceback, when it is collected. The failure is already
  reported as one line, so collect them now with that logger quiet."""
  asyncio_log = logging.getLogger("asyncio")
  level = asyncio_log.level
  asyncio_log.setLevel(logging.CRITICAL)
  try:
    gc.collect()
  finally:
    asyncio_log.setLevel(level)


def _verify(state: Any, recorded: Optional[dict], *, part: bool = False) -> bool:
  """Raises _DamagedCheckpoint if a leaf of `state` (`part`: a part of the
  saved state) differs from its recorded digest; False if none were recorded."""
  if recorded is None:
    return False
  actual = state_digests(state)
  bad = sorted(k for k in set(actual) | (set() if part else set(recorded))
               if recorded.get(k) != actual.get(k))
  if bad:
    raise _DamagedCheckpoint(f"{len(bad)} arrays do not match their digests, e.g. '{bad[0]}'")
  return True


def _nested(flat: dict[str, Any]) -> dict:
  """{"a/b": x} as {"a": {"b": x}}."""
  tree: dict = {}
  for name, value in flat.items():
    *parents, leaf = name.split("/")
    node = tree
    for part in parents:
      node = node.setdefault(part, {})
    node[leaf] = value
  return tree


def _lookup(tree: dict, name: str) -> Any:
  return functools.reduce(lambda node, part: node[part], name.split("/"), tree)


class Checkpointer:

  def __init__(self, workdir, *, max_to_keep: int = 3, async_save: bool = True):
    # (epath's `absolute()` would turn gs://b/x into a local ./gs:/b/x.)
    self.workdir = storage.resolve(workdir, "workdir")
    self.directory = self.workdir / CHECKPOINT_SUBDIR
    self.rejected_directory = self.workdir / REJECTED_SUBDIR
    self._manager = ocp.CheckpointManager(
        self.directory,
        options=ocp.CheckpointManagerOptions(
            max_to_keep=max_to_keep, enable_async_checkpointing=async_save, create=True),
        item_handlers=dict(state=ocp.StandardCheckpointHandler(),
                           data=ocp.JsonCheckpointHandler()))

  def latest_step(self) -> Optional[int]:
    return self._manager.latest_step()

  def describe_latest(self) -> str:
    """Where the latest checkpoint is, for messages about a stopped run."""
    latest = self.latest_step()
    if latest is None:
      return "no checkpoint was saved before it"
    return f"the latest checkpoint (step {latest}) is in {self.directory}"

  def all_steps(self) -> list[int]:
    return sorted(self._manager.all_steps())

  def save(self, step: int, state: Any, data_position: int) -> bool:
    """Saves unless `step` is already saved; the caller decides when."""
    if step in self._manager.all_steps():
      return False
    if not all_finite(state):
      raise NonFiniteStateError(f"The state at step {step} holds NaN or Inf; not saving "
                                f"it ({self.describe_latest()}).")
    return self._manager.save(
        step,
        args=ocp.args.Composite(
            state=ocp.args.StandardSave(state),
            data=ocp.args.JsonSave({"position": int(data_position),
                                    "state_sha256": state_digests(state)})),
        force=True)

  def _check_shapes(self, step: int, abstract_state: Any, *, part: bool = False) -> None:
    """Raises CheckpointError if the checkpoint's tree or shapes are not the
    run's (`part`: if it lacks a leaf of `abstract_state` or holds it in
    another shape), _DamagedCheckpoint if its metadata cannot be read."""
    try:
      saved = self._manager.item_metadata(step)["state"]
      saved = {_leaf_name(p): (tuple(m.shape), np.dtype(m.dtype)) for p, m in
               jax.tree_util.tree_flatten_with_path(saved)[0]}
    except Exception as error:  # Orbax raises many types for unreadable files
      raise _DamagedCheckpoint(f"unreadable metadata ({type(error).__name__})") from error
    wanted = {_leaf_name(p): (tuple(x.shape), np.dtype(x.dtype)) for p, x in
              jax.tree_util.tree_flatten_with_path(abstract_state)[0]}
    differ = sorted(k for k in set(wanted) | (set() if part else set(saved))
                    if saved.get(k) != wanted.get(k))
    if not differ:
      return
    example = differ[0]
    raise CheckpointError(
        f"The checkpoint at step {step} in {self.directory} does not fit this config: "
        f"{len(differ)} arrays differ, e.g. '{example}' is "
        f"{saved.get(example, ('absent',))[0]} there and "
        f"{wanted.get(example, ('absent',))[0]} here. Resume with the run's own config "
        "or use a new --workdir.")

  def _restore_checked(self, step: int, abstract_state: Any,
                       sharding: NamedSharding) -> tuple[Any, int, bool]:
    """(state, position, verified); raises _DamagedCheckpoint or CheckpointError."""
    self._check_shapes(step, abstract_state)
    target = jax.tree.map(
        lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding), abstract_state)
    try:
      restored = self._manager.restore(
          step, args=ocp.args.Composite(state=ocp.args.StandardRestore(target),
                                        data=ocp.args.JsonRestore()))
    except Exception as error:  # Orbax raises many types for damaged files
      _collect_failed_reads()
      raise _DamagedCheckpoint(f"unreadable ({type(error).__name__})") from error
    state, data = restored["state"], restored["data"]
    verified = _verify(state, data.get("state_sha256"))
    return state, int(data["position"]), verified

  def _existing_step(self, step: Optional[int]) -> int:
    if step is None and self.latest_step() is None:
      raise CheckpointError(f"No checkpoint in {self.directory}: has the run saved one?")
    step = self.latest_step() if step is None else step
    if step not in self._manager.all_steps():
      raise CheckpointError(f"No checkpoint for step {step} in {self.directory}; "
                            f"available: {self.all_steps()}.")
    return step

  def _read_only(self, restore: Callable[[], Any], step: int) -> Any:
    """`restore()`, with a damaged checkpoint an error (never moved)."""
    try:
      result, verified = restore()
    except _DamagedCheckpoint as error:
      raise CheckpointError(f"The checkpoint at step {step} in {self.directory} is "
                            f"damaged: {error}.") from error
    if not verified:
      log.warning("The checkpoint at step %d has no digests (saved by an older "
                  "version): restored unverified.", step)
    return result

  def restore(self, abstract_state: Any, sharding: NamedSharding,
              step: Optional[int] = None) -> tuple[Any, int]:
    """Restores (state, data position) at `step` (default: latest), verified.

    `abstract_state` gives the tree and the static fields (for example from
    `jax.eval_shape`); every array is placed with `sharding`. Reads only:
    a damaged checkpoint is an error here, never moved.
    """
    step = self._existing_step(step)

    def restore():
      state, position, verified = self._restore_checked(step, abstract_state, sharding)
      return (state, position), verified

    return self._read_only(restore, step)

  def restore_part(self, abstract_part: Any, sharding: NamedSharding,
                   step: Optional[int] = None) -> Any:
    """The leaves `abstract_part` holds, read from the checkpoint at `step`
    (default: latest) into its tree, verified like `restore`; the checkpoint's
    other arrays are never read. `abstract_part` is the saved state's tree
    with subtrees left out (a player, or its `opt_state` set to None), whose
    leaves sit in dicts and dataclasses (Orbax restores it as nested dicts)."""
    step = self._existing_step(step)

    def restore():
      self._check_shapes(step, abstract_part, part=True)
      names = {_leaf_name(p): jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding)
               for p, x in jax.tree_util.tree_flatten_with_path(abstract_part)[0]}
      target = _nested(names)
      try:
        restored = self._part_reader.restore(
            step, args=ocp.args.Composite(
                state=ocp.args.PyTreeRestore(
                    target, restore_args=ocp.checkpoint_utils.construct_restore_args(target),
                    partial_restore=True),
                data=ocp.args.JsonRestore()))
      except Exception as error:  # Orbax raises many types for damaged files
        _collect_failed_reads()
        raise _DamagedCheckpoint(f"unreadable ({type(error).__name__})") from error
      flat = {name: _lookup(restored["state"], name) for name in names}
      part = jax.tree_util.tree_map_with_path(lambda p, _: flat[_leaf_name(p)], abstract_part)
      return part, _verify(part, restored["data"].get("state_sha256"), part=True)

    return self._read_only(restore, step)

  @functools.cached_property
  def _part_reader(self) -> ocp.CheckpointManager:
    # The state is saved by StandardCheckpointHandler, which restores whole
    # trees only; the PyTree handler it wraps reads the same files in part.
    # Never saves (Orbax's read_only option would only add warnings).
    return ocp.CheckpointManager(
        self.directory, options=ocp.CheckpointManagerOptions(create=False),
        item_handlers=dict(state=ocp.PyTreeCheckpointHandler(),
                           data=ocp.JsonCheckpointHandler()))

  def restore_latest(self, abstract_state: Any,
                     sharding: NamedSharding) -> Optional[tuple[Any, int]]:
    """The newest checkpoint that restores and verifies, as (state, position);
    damaged newer ones are moved aside. None if there were no checkpoints."""
    rejected = []
    for step in sorted(self._manager.all_steps(), reverse=True):
      try:
        state, position, verified = self._restore_checked(step, abstract_state, sharding)
      except _DamagedCheckpoint as error:
        destination = self._move_aside(step)
        log.warning("Checkpoint %d is damaged (%s); moved it to %s and trying the one "
                    "before.", step, error, destination)
        rejected.append(step)
        continue
      if not verified:
        log.warning("The checkpoint at step %d has no digests (saved by an older "
                    "version): restored unverified.", step)
      return state, position
    if rejected:
      raise CheckpointError(
          f"No checkpoint in {self.directory} restores: steps {rejected} are damaged "
          f"and were moved to {self.rejected_directory}. Start again with a new --workdir.")
    return None

  def _move_aside(self, step: int) -> epath.Path:
    source = self.directory / str(step)

    def move() -> epath.Path:
      self.rejected_directory.mkdir(parents=True, exist_ok=True)
      destination, suffix = self.rejected_directory / str(step), 1
      while destination.exists():
        destination = self.rejected_directory / f"{step}.{suffix}"
        suffix += 1
      source.rename(destination)
      return destination

    # Process 0 moves it while the others wait, so that none reloads before.
    destination = multihost.on_first_process(move, f"moving checkpoint {step} aside")
    self._manager.reload()
    return destination or self.rejected_directory / str(step)

  def wait(self) -> None:
    self._manager.wait_until_finished()

  def close(self) -> None:
    self._manager.wait_until_finished()
    self._manager.close()
    if "_part_reader" in self.__dict__:
      self._part_reader.close()
