"""A JAX profiler trace of a window of train steps.

`config.profile.num_steps > 0` traces steps start_step + 1 .. start_step +
num_steps into <workdir>/profile (open it with TensorBoard's profile plugin
or Perfetto). The window is closed after its last step has finished on the
device, so the trace holds the whole of each step.
"""

from __future__ import annotations

import logging
import os

import jax
from etils import epath

log = logging.getLogger("gan_jax")

PROFILE_DIR = "profile"


class StepTraceWindow:

  def __init__(self, profile_config, workdir: str):
    self.first = int(profile_config.get("start_step", 0)) + 1
    self.last = self.first + int(profile_config.get("num_steps", 0)) - 1
    self.directory = os.fspath(epath.Path(workdir) / PROFILE_DIR)
    self.active = False

  @property
  def enabled(self) -> bool:
    return self.last >= self.first

  def before_step(self, step: int) -> None:
    """Call with the number of the step about to run (1-based)."""
    if self.enabled and step == self.first and not self.active:
      jax.profiler.start_trace(self.directory)
      self.active = True

  def after_step(self, step: int, outputs) -> None:
    if self.active and step >= self.last:
      jax.block_until_ready(outputs)
      jax.profiler.stop_trace()
      self.active = False
      log.info("Wrote a profiler trace of steps %d-%d to %s", self.first, self.last,
               self.directory)

  def close(self) -> None:
    if self.active:
      jax.profiler.stop_trace()
      self.active = False
