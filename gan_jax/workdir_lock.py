"""One training run per workdir: `WorkdirLock` is held for the run's life.

The lock is an exclusive `flock` on `<workdir>/.lock`, so the kernel releases
it however the holder ends (exception, SIGKILL, power loss): a lock left by
a dead process is stale by construction, and the next launch takes it. The
file names the holder (host, pid, start time) for the refusal message.
Evaluation and sampling only read a workdir and take no lock.

Workdirs on remote filesystems (gs://...) have no flock; there the lock is
skipped with a warning, and one launch per workdir is the user's to keep.
"""

from __future__ import annotations

import datetime
import fcntl
import json
import logging
import os
import socket
from typing import Optional

from etils import epath

from gan_jax import storage
from gan_jax.errors import UserError

LOCK_FILE = ".lock"
log = logging.getLogger("gan_jax")


class WorkdirLockedError(UserError):
  """Another live process trains in this workdir."""


def _holder(path: str) -> str:
  try:
    with open(path) as f:
      info = json.load(f)
    return f"pid {info['pid']} on {info['host']}, started {info['started']}"
  except (OSError, ValueError, KeyError):
    return "another process"


class WorkdirLock:
  """Context manager; `acquire` raises `WorkdirLockedError` naming the holder."""

  def __init__(self, workdir):
    self.workdir = epath.Path(workdir)
    self._fd: Optional[int] = None

  def acquire(self) -> "WorkdirLock":
    if storage.is_uri(self.workdir):
      # flock and O_CREAT need a local file: never a folder named "gs:".
      log.warning("%s is not a local path: running without a workdir lock.", self.workdir)
      return self
    self.workdir.mkdir(parents=True, exist_ok=True)
    path = os.fspath(self.workdir / LOCK_FILE)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
      fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      os.close(fd)
      raise WorkdirLockedError(
          f"{self.workdir} is in use by a training run ({_holder(path)}); wait for it to "
          "end or use another --workdir.") from None
    info = {"pid": os.getpid(), "host": socket.gethostname(),
            "started": datetime.datetime.now().isoformat(timespec="seconds")}
    os.ftruncate(fd, 0)
    os.write(fd, json.dumps(info).encode())
    os.fsync(fd)
    self._fd = fd
    return self

  def release(self) -> None:
    if self._fd is not None:
      os.ftruncate(self._fd, 0)
      fcntl.flock(self._fd, fcntl.LOCK_UN)
      os.close(self._fd)
      self._fd = None

  def __enter__(self) -> "WorkdirLock":
    return self.acquire()

  def __exit__(self, *exc) -> None:
    self.release()
