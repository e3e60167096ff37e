"""A JAX profiler trace of a window of train steps.

`config.profile.num_steps > 0` traces steps start_step + 1 .. start_step +
num_steps into <workdir>/profile (open it with TensorBoard's profile plugin
or Perfetto). The window is closed after its last step has finished on the
device, so the trace holds the whole of each step. JAX's profiler writes
local files only: for a workdir in a bucket the trace goes to a local
temporary folder, copied into <workdir>/profile through epath when it ends.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile

import jax
from etils import epath

from gan_jax import storage

log = logging.getLogger("gan_jax")

PROFILE_DIR = "profile"


class StepTraceWindow:

  def __init__(self, profile_config, workdir: str):
    self.first = int(profile_config.get("start_step", 0)) + 1
    self.last = self.first + int(profile_config.get("num_steps", 0)) - 1
    self.directory = epath.Path(workdir) / PROFILE_DIR
    self.active = False
    self._local_directory = None

  @property
  def enabled(self) -> bool:
    return self.last >= self.first

  def before_step(self, step: int) -> None:
    """Call with the number of the step about to run (1-based)."""
    if self.enabled and step == self.first and not self.active:
      self._local_directory = (tempfile.mkdtemp(prefix="gan_jax_profile_")
                               if storage.is_uri(self.directory)
                               else os.fspath(self.directory))
      jax.profiler.start_trace(self._local_directory)
      self.active = True

  def after_step(self, step: int, outputs) -> None:
    if self.active and step >= self.last:
      jax.block_until_ready(outputs)
      self._stop()
      log.info("Wrote a profiler trace of steps %d-%d to %s", self.first, self.last,
               self.directory)

  def close(self) -> None:
    if self.active:
      self._stop()

  def _stop(self) -> None:
    jax.profiler.stop_trace()
    self.active = False
    if self._local_directory != os.fspath(self.directory):
      for root, _, names in os.walk(self._local_directory):
        for name in names:
          local = os.path.join(root, name)
          target = self.directory / os.path.relpath(local, self._local_directory)
          target.parent.mkdir(parents=True, exist_ok=True)
          with open(local, "rb") as f:
            target.write_bytes(f.read())
      shutil.rmtree(self._local_directory)
