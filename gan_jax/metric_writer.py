"""Metric logging: JSON lines and TensorBoard, written by process 0 only.

On resume from step `s`, lines the interrupted run logged after `s` are
dropped from `metrics.jsonl`, and TensorBoard is told to purge events after
`s`, so both read as one uninterrupted run. Rows at steps up to `s` were all
written before checkpoint `s` was saved, so the resumed run writes none of
them again (relaunching a finished run adds no rows). A half-written last
line, left by a crash mid-write, is dropped.

A job of several seeds (`gan_jax.seeds`) logs the mean over its live seeds
under each metric's name, and seed `i`'s value as `<name>/seed_<i>` in
`metrics.jsonl` and under the same name in the TensorBoard run
`tensorboard/seed_<i>`, so TensorBoard draws one curve per seed on each
metric's chart beside the mean's.
"""

from __future__ import annotations

import json
import logging
from typing import Optional

import jax
import numpy as np
from etils import epath

METRICS_FILE = "metrics.jsonl"
log = logging.getLogger("gan_jax")


def _parse_rows(text: str) -> tuple[list[dict], int]:
  """(complete rows, count of dropped lines). Only a final line without its
  newline can be partial; a bad line elsewhere is dropped too, with a count."""
  rows, dropped = [], 0
  for line in text.splitlines(keepends=True):
    try:
      row = json.loads(line)
      if not line.endswith("\n") or not isinstance(row, dict) or "step" not in row:
        raise ValueError(line)
    except ValueError:
      dropped += 1
      continue
    rows.append(row)
  return rows, dropped


class MetricWriter:

  def __init__(self, workdir, *, resume_step: Optional[int] = None,
               tensorboard: bool = True):
    self.active = jax.process_index() == 0
    workdir = epath.Path(workdir)
    self.path = workdir / METRICS_FILE
    self._written_through = -1 if resume_step is None else resume_step
    self._tb = None
    self._seed_tb: dict[int, object] = {}
    self._tb_dir = workdir / "tensorboard" if tensorboard else None
    self._purge_step = None if resume_step is None else resume_step + 1
    if not self.active:
      return
    workdir.mkdir(parents=True, exist_ok=True)
    if resume_step is not None:
      self._truncate_after(resume_step)
    elif self.path.exists():
      self.path.unlink()
    if tensorboard:
      self._tb = self._summary_writer(self._tb_dir)

  def _truncate_after(self, step: int) -> None:
    if not self.path.exists():
      return
    rows, dropped = _parse_rows(self.path.read_text())
    if dropped:
      log.warning("%s: dropped %d incomplete line(s).", self.path, dropped)
    kept = "".join(json.dumps(row) + "\n" for row in rows if row["step"] <= step)
    partial = self.path.parent / f".{self.path.name}.tmp"
    partial.write_text(kept)
    partial.replace(self.path)

  def _summary_writer(self, directory):
    from tensorboardX import SummaryWriter
    return SummaryWriter(str(directory), purge_step=self._purge_step)

  def write_scalars(self, step: int, scalars: dict,
                    per_seed: Optional[dict[int, dict]] = None) -> None:
    """`per_seed`: {seed index: its scalars}, beside the mean in `scalars`."""
    if not self.active or step <= self._written_through:
      return
    record = {"step": int(step), **{k: float(v) for k, v in scalars.items()}}
    for index, values in sorted((per_seed or {}).items()):
      record.update({f"{k}/seed_{index}": float(v) for k, v in values.items()})
    with self.path.open("a") as f:
      f.write(json.dumps(record) + "\n")
    if self._tb is not None:
      for key, value in scalars.items():
        self._tb.add_scalar(key, float(value), int(step))
      for index, values in (per_seed or {}).items():
        if index not in self._seed_tb:
          self._seed_tb[index] = self._summary_writer(self._tb_dir / f"seed_{index}")
        for key, value in values.items():
          self._seed_tb[index].add_scalar(key, float(value), int(step))

  def write_image(self, step: int, tag: str, image: np.ndarray) -> None:
    """`image` is HWC uint8."""
    if self.active and self._tb is not None and step > self._written_through:
      self._tb.add_image(tag, image, int(step), dataformats="HWC")

  def flush(self) -> None:
    for tb in [self._tb, *self._seed_tb.values()]:
      if tb is not None:
        tb.flush()

  def close(self) -> None:
    for tb in [self._tb, *self._seed_tb.values()]:
      if tb is not None:
        tb.close()
    self._tb, self._seed_tb = None, {}


def read_metrics(workdir) -> list[dict]:
  """The complete rows of `metrics.jsonl` (a partial last line is skipped)."""
  return _parse_rows((epath.Path(workdir) / METRICS_FILE).read_text())[0]
