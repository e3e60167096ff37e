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

import io
import json
import logging
from typing import Optional

import jax
import numpy as np
from etils import epath

from gan_jax import storage

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
    self._remote_text: Optional[str] = None
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
    storage.write_atomically(self.path, lambda f: f.write(kept.encode()))

  def _append(self, line: str) -> None:
    if storage.is_uri(self.path):
      # An object in a bucket cannot be appended to: it is rewritten whole,
      # from the text read once and kept.
      if self._remote_text is None:
        self._remote_text = self.path.read_text() if self.path.exists() else ""
      self._remote_text += line
      self.path.write_text(self._remote_text)
    else:
      with self.path.open("a") as f:
        f.write(line)

  def _summary_writer(self, directory):
    from tensorboardX import SummaryWriter, record_writer
    scheme, _ = storage.split_scheme(directory)
    if scheme:
      # tensorboardX opens event files by scheme; this one writes through
      # epath, as every other file of the run (its own gs:// writer would
      # need a second client).
      record_writer.register_writer_factory(scheme, _EventFilesThroughEpath())
    return SummaryWriter(str(directory), purge_step=self._purge_step)

  def write_scalars(self, step: int, scalars: dict,
                    per_seed: Optional[dict[int, dict]] = None) -> None:
    """`per_seed`: {seed index: its scalars}, beside the mean in `scalars`."""
    if not self.active or step <= self._written_through:
      return
    record = {"step": int(step), **{k: float(v) for k, v in scalars.items()}}
    for index, values in sorted((per_seed or {}).items()):
      record.update({f"{k}/seed_{index}": float(v) for k, v in values.items()})
    self._append(json.dumps(record) + "\n")
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


class _EventFile:
  """A TensorBoard event file in a bucket, where objects cannot be appended
  to: the events so far stay in memory and each flush rewrites the object."""

  def __init__(self, path: str):
    self.path = epath.Path(path)
    self.buffer = io.BytesIO()

  def write(self, data: bytes) -> None:
    self.buffer.write(data)

  def flush(self) -> None:
    self.path.write_bytes(self.buffer.getvalue())

  def close(self) -> None:
    self.flush()


class _EventFilesThroughEpath:
  """A tensorboardX writer factory (`record_writer.register_writer_factory`)."""

  def open(self, path: str) -> _EventFile:
    return _EventFile(path)

  def directory_check(self, path: str) -> None:
    epath.Path(path).mkdir(parents=True, exist_ok=True)


def read_metrics(workdir) -> list[dict]:
  """The complete rows of `metrics.jsonl` (a partial last line is skipped)."""
  return _parse_rows((epath.Path(workdir) / METRICS_FILE).read_text())[0]
