"""The processes of one run: joining the cluster, files one process writes for
all, and a stop every process agrees on.

Joining. `join` starts JAX's distributed runtime, auto-detected (TPU pods,
SLURM, Open MPI) or from an explicit coordinator address, process count and
id. JAX aborts a process that cannot join with a C++ stack trace; a watchdog
ends it first, with one line naming the coordinator and the timeout.

Files. A file that one process writes and the others read (config.json, a
synthetic dataset made on first use) is written by process 0 alone inside
`on_first_process`: the others wait there until process 0 has finished, and
learn whether it failed, so an error on process 0 ends every process with
its message instead of leaving them waiting at the next collective. These
waits go through the coordination service, not device collectives: Gloo
(CPU) fails a collective whose processes arrive more than 30 s apart.

Stopping. SIGTERM (how a pod's maintenance event or a scheduler's preemption
arrives) and SIGINT make every process save the same step and stop. On one
process the handler just sets a flag. On several, JAX's preemption sync point
does the agreeing: its C++ notifier catches SIGTERM on any process, the
coordination service tells every process, and they pick the step after the
furthest one any has reached, so the collective save starts at one step on all
of them however far apart the signals came (or if only one process got one).
SIGINT is re-sent to the own process as SIGTERM for that notifier. Python must
therefore never install a SIGTERM handler in a cluster: it would replace the
notifier's. A second SIGINT aborts at once (the default action).
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from typing import Callable, Optional, TypeVar

import jax
from absl import app, flags
from jax.experimental import multihost_utils

log = logging.getLogger("gan_jax")
T = TypeVar("T")
_SYNC_TIMEOUT_MS = 60 * 60 * 1000  # process 0 may be making a dataset
_DONE = "done"
# JAX's own initialization timeout is set past the watchdog's, so that the
# watchdog speaks first.
_JAX_TIMEOUT_MARGIN_S = 60


class FirstProcessError(RuntimeError):
  """Process 0 failed at a step every process waits for."""


def join(coordinator_address: Optional[str] = None, num_processes: Optional[int] = None,
         process_id: Optional[int] = None, timeout_s: int = 300) -> None:
  """Joins the cluster; exits with status 2 and one line if that takes longer
  than `timeout_s` (a process that never starts, a wrong address or port)."""
  where = coordinator_address or "the auto-detected coordinator"
  who = "" if process_id is None else f"process {process_id}"
  who += "" if num_processes is None else f" of {num_processes}"

  def give_up():
    print(f"Could not join the cluster at {where} within {timeout_s} s{' as ' + who if who else ''}"
          ": check that every process was started, with the same coordinator address "
          "and process count, and that the address is reachable.", file=sys.stderr, flush=True)
    os._exit(2)  # the runtime's connect call is blocking this process's main thread

  watchdog = threading.Timer(timeout_s, give_up)
  watchdog.daemon = True
  watchdog.start()
  try:
    jax.distributed.initialize(coordinator_address=coordinator_address,
                               num_processes=num_processes, process_id=process_id,
                               initialization_timeout=timeout_s + _JAX_TIMEOUT_MARGIN_S)
  finally:
    watchdog.cancel()


def define_flags():
  """--distributed and how to find the cluster, for the entry points."""
  flags.DEFINE_bool("distributed", False,
                    "Join a multi-process JAX cluster (auto-detected unless the flags "
                    "below name it).")
  flags.DEFINE_string("coordinator_address", None,
                      "HOST:PORT of process 0's coordinator (with --distributed).")
  flags.DEFINE_integer("num_processes", None, "Number of processes (with --distributed).")
  flags.DEFINE_integer("process_id", None, "This process's index, 0 .. num_processes - 1 "
                       "(with --distributed).")
  flags.DEFINE_integer("join_timeout_s", 300, "Seconds to wait for every process to join.")


def join_from_flags():
  """Joins the cluster the flags name, if --distributed."""
  named = [name for name in ("coordinator_address", "num_processes", "process_id")
           if flags.FLAGS[name].value is not None]
  if named and not flags.FLAGS.distributed:
    raise app.UsageError(f"--{named[0]} needs --distributed.")
  if flags.FLAGS.distributed:
    join(flags.FLAGS.coordinator_address, flags.FLAGS.num_processes,
         flags.FLAGS.process_id, flags.FLAGS.join_timeout_s)


def leave() -> None:
  """Leaves the cluster cleanly (only after a run every process finished)."""
  if jax.process_count() > 1:
    jax.distributed.shutdown()


def is_first_process() -> bool:
  return jax.process_index() == 0


def _coordination_client():
  # The distributed runtime's client: its barriers and key-value store wait
  # as long as asked, where a device collective on CPU (Gloo) fails once the
  # processes arrive 30 s apart, as a slow start on a loaded host can make
  # them. JAX has no public name for it.
  from jax._src import distributed
  return distributed.global_state.client


class _SyncNames:
  """Names for barriers and keys: every process makes the same calls in the
  same order, so a per-process counter names them alike."""

  def __init__(self):
    self._count = 0

  def next(self, label: str) -> str:
    self._count += 1
    return f"gan_jax/{self._count}/{label}"


_names = _SyncNames()


def barrier(label: str) -> None:
  """Returns once every process has reached it (at once on one process)."""
  if jax.process_count() > 1:
    _coordination_client().wait_at_barrier(_names.next(label), _SYNC_TIMEOUT_MS)


def on_first_process(write: Callable[[], T], what: str) -> Optional[T]:
  """Runs `write` on process 0 only and returns its result there (None on the
  others, which return once it has finished); if it failed, every process
  raises."""
  if jax.process_count() == 1:
    return write()
  key = _names.next(what)
  client = _coordination_client()
  if not is_first_process():
    outcome = client.blocking_key_value_get(key, _SYNC_TIMEOUT_MS)
    if outcome != _DONE:
      raise FirstProcessError(f"Process 0 failed {what}: {outcome}")
    return None
  try:
    result = write()
  except Exception as error:
    client.key_value_set(key, f"{type(error).__name__}: {error}")
    raise
  client.key_value_set(key, _DONE)
  return result


class StopSignals:
  """SIGTERM and SIGINT to a step every process agrees on; see the module doc.

  Use as a context manager around the loop (it installs the handlers only in
  the main thread), and call `should_stop(step)` once after every step.
  """

  def __init__(self):
    self._in_cluster = jax.process_count() > 1
    self._requested = False
    self._previous: dict[int, object] = {}

  def __enter__(self):
    if threading.current_thread() is threading.main_thread():
      if not self._in_cluster:
        self._previous[signal.SIGTERM] = signal.signal(signal.SIGTERM, self._on_terminate)
      self._previous[signal.SIGINT] = signal.signal(signal.SIGINT, self._on_interrupt)
    return self

  def __exit__(self, *exc_info):
    for signum, handler in self._previous.items():
      signal.signal(signum, handler)
    self._previous.clear()

  def _on_terminate(self, signum, frame):
    del signum, frame
    log.warning("SIGTERM received: saving a checkpoint at the current step and stopping.")
    self._requested = True

  def _on_interrupt(self, signum, frame):
    del signum, frame
    log.warning("Interrupted: saving a checkpoint and stopping; press Ctrl-C again to "
                "abort without saving.")
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    if self._in_cluster:
      os.kill(os.getpid(), signal.SIGTERM)
    else:
      self._requested = True

  def should_stop(self, step: int) -> bool:
    """Whether to save `step` and stop; in a cluster, true at the same step on
    every process (JAX requires a call at every step to agree on it)."""
    if not self._in_cluster:
      return self._requested
    if multihost_utils.reached_preemption_sync_point(step):
      log.warning("A process was asked to stop: every process saves step %d and stops.", step)
      return True
    return False

