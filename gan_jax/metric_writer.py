"""Metric logging: JSON lines and TensorBoard, written by process 0 only.

On resume from step `s`, lines the interrupted run logged after `s` are
dropped from `metrics.jsonl`, and TensorBoard is told to purge events after
`s`, so both read as one uninterrupted run.
"""

from __future__ import annotations

import json
import os
from typing import Optional

import jax
import numpy as np

METRICS_FILE = "metrics.jsonl"


class MetricWriter:

  def __init__(self, workdir: str, *, resume_step: Optional[int] = None,
               tensorboard: bool = True):
    self.active = jax.process_index() == 0
    self.path = os.path.join(workdir, METRICS_FILE)
    self._tb = None
    if not self.active:
      return
    os.makedirs(workdir, exist_ok=True)
    if resume_step is not None:
      self._truncate_after(resume_step)
    elif os.path.exists(self.path):
      os.remove(self.path)
    if tensorboard:
      from tensorboardX import SummaryWriter
      purge = None if resume_step is None else resume_step + 1
      self._tb = SummaryWriter(os.path.join(workdir, "tensorboard"), purge_step=purge)

  def _truncate_after(self, step: int) -> None:
    if not os.path.exists(self.path):
      return
    with open(self.path) as f:
      kept = [line for line in f if json.loads(line)["step"] <= step]
    with open(self.path, "w") as f:
      f.writelines(kept)

  def write_scalars(self, step: int, scalars: dict) -> None:
    if not self.active:
      return
    record = {"step": int(step), **{k: float(v) for k, v in scalars.items()}}
    with open(self.path, "a") as f:
      f.write(json.dumps(record) + "\n")
    if self._tb is not None:
      for key, value in scalars.items():
        self._tb.add_scalar(key, float(value), int(step))

  def write_image(self, step: int, tag: str, image: np.ndarray) -> None:
    """`image` is HWC uint8."""
    if self.active and self._tb is not None:
      self._tb.add_image(tag, image, int(step), dataformats="HWC")

  def flush(self) -> None:
    if self._tb is not None:
      self._tb.flush()

  def close(self) -> None:
    if self._tb is not None:
      self._tb.close()
      self._tb = None


def read_metrics(workdir: str) -> list[dict]:
  with open(os.path.join(workdir, METRICS_FILE)) as f:
    return [json.loads(line) for line in f]
