"""The input pipeline: prepared TFDS data -> Grain -> global device arrays.

Order. Example positions run 0, 1, 2, ... over an endless stream; position `i`
is in epoch `i // N` and maps to record `perm_e[i % N]`, where `perm_e` is a
permutation of the N records seeded by (shuffle seed, epoch). Global batch `k`
is positions `k*B .. (k+1)*B`; process `p` of `P` reads rows `p*B/P ..` of it.
So the examples a step sees depend only on the seed and the batch index, not
on the number of processes or devices, and the loader's whole state is the
index of the next batch: a resumed run reads exactly what an uninterrupted
one would have read.

Reading. Records are read once from array_record through a TFDS data source
and held in memory (the datasets used here are small, and one-record-at-a-time
reads are far slower than a small model's step). Grain serves batch `k` as
element `k` of a random-access `MapDataset`, with preprocessing as a Grain
`map`. Each row reaches the preprocessing with its record index and stream
position, which key any randomness there (dynamic binarisation), so that too
depends only on the seed and the batch index. A background thread prefetches
the next batches onto the devices.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import json
import logging
import os
import queue
import sys
import tempfile
import threading
import zipfile
from typing import Callable, Iterator, Optional, Sequence

import grain
import jax
import numpy as np
import tensorflow_datasets as tfds
from etils import epath
from jax.sharding import Mesh, NamedSharding

from gan_jax import storage
from gan_jax.data import DataDamagedError, DataNotPreparedError, DatasetSpec, prepare_command
from gan_jax.sharding import BATCH_SPEC, SEEDED_BATCH_SPEC

_READ_CHUNK = 8192
MANIFEST_FILE = "gan_jax_files.json"
log = logging.getLogger("gan_jax")


def is_prepared(spec: DatasetSpec, data_dir: str) -> bool:
  return spec.builder(data_dir).is_prepared()


def _sha256(path: epath.Path) -> str:
  digest = hashlib.sha256()
  with path.open("rb") as f:
    for block in iter(lambda: f.read(1 << 20), b""):
      digest.update(block)
  return digest.hexdigest()


def _write_manifest(builder) -> None:
  """Records each record file's size and SHA-256 beside it: TFDS records the
  example counts, but no checksum of the files it writes."""
  files = {}
  for split in builder.info.splits.values():
    for path in split.filepaths:
      path = epath.Path(path)
      files[path.name] = {"bytes": path.stat().length, "sha256": _sha256(path)}
  text = json.dumps(files, indent=2, sort_keys=True)
  storage.write_atomically(epath.Path(builder.data_dir) / MANIFEST_FILE,
                           lambda f: f.write(text.encode()))


def find_damage(spec: DatasetSpec, data_dir: str, thorough: bool = False) -> Optional[str]:
  """What is wrong with the prepared dataset, or None if it is intact or was
  never prepared. Always: `dataset_info.json` and every record file present,
  and sizes as recorded; `thorough`: checksums and example counts too."""
  # TFDS warns about a version directory without dataset_info.json; the
  # answer says so in its own words.
  absl_log = logging.getLogger("absl")
  level = absl_log.level
  absl_log.setLevel(logging.ERROR)
  try:
    return _find_damage(spec, data_dir, thorough)
  finally:
    absl_log.setLevel(level)


def _find_damage(spec: DatasetSpec, data_dir: str, thorough: bool) -> Optional[str]:
  builder = spec.builder(data_dir)
  version_dir = epath.Path(builder.data_dir)
  if not builder.is_prepared():
    if version_dir.exists() and any(version_dir.iterdir()):
      return f"{version_dir}/dataset_info.json is missing"
    return None
  manifest_path = version_dir / MANIFEST_FILE
  try:
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
  except ValueError:
    return f"{manifest_path} is unreadable"
  for name, split in builder.info.splits.items():
    for path in map(epath.Path, split.filepaths):
      recorded = manifest.get(path.name)
      if not path.exists():
        return f"{path} is missing"
      if recorded and path.stat().length != recorded["bytes"]:
        return f"{path} has {path.stat().length} bytes, not {recorded['bytes']}"
      if thorough and recorded and _sha256(path) != recorded["sha256"]:
        return f"{path} does not match its checksum"
    if thorough:
      try:
        count = len(builder.as_data_source(split=name))
      except Exception as error:  # the record reader raises several types
        return f"the {name} records are unreadable ({type(error).__name__})"
      if count != split.num_examples:
        return f"the {name} split has {count} records, not {split.num_examples}"
  return None


def damaged_error(spec: DatasetSpec, data_dir: str, problem: str) -> DataDamagedError:
  return DataDamagedError(
      f"Dataset '{spec.name}' in {data_dir} is damaged: {problem}. Rebuild it with: "
      f"{prepare_command(spec.name, data_dir, force=True)}")


@contextlib.contextmanager
def _exclusive_preparation(spec: DatasetSpec, data_dir: str):
  """Holds `<data_dir>/.<name>.prepare.lock` (flock, blocking) where data_dir
  is local, so that runs launched together make the dataset once: the others
  wait, then find it prepared. The kernel drops the lock however its holder ends."""
  if storage.is_uri(data_dir):
    yield
    return
  os.makedirs(data_dir, exist_ok=True)
  fd = os.open(os.path.join(data_dir, f".{spec.name}.prepare.lock"), os.O_RDWR | os.O_CREAT, 0o644)
  try:
    fcntl.flock(fd, fcntl.LOCK_EX)
    yield
  finally:
    os.close(fd)  # releases the lock


def prepare_if_needed(spec: DatasetSpec, data_dir: str) -> None:
  """Makes a dataset that can be made on the spot (synthetic) when missing,
  and remakes it when damaged; one process at a time per data dir."""
  if find_damage(spec, data_dir) is None and is_prepared(spec, data_dir):
    return
  with _exclusive_preparation(spec, data_dir):
    # Looked at again under the lock: another launch may have just made it.
    problem = find_damage(spec, data_dir)
    if problem is None and is_prepared(spec, data_dir):
      return
    if problem is not None:
      log.warning("Dataset %s is damaged (%s); making it again.", spec.name, problem)
    else:
      log.info("Preparing dataset %s in %s", spec.name, data_dir)
    prepare(spec, data_dir, force=problem is not None)


def _require_tensorflow(spec: DatasetSpec) -> None:
  try:
    import tensorflow  # noqa: F401
  except ImportError:
    raise ImportError(
        f"Preparing '{spec.name}' needs TensorFlow (TFDS's builder encodes the images "
        "with it; reading them back does not). Install it with:\n"
        "  pip install -e '.[prepare]'") from None


def prepare(spec: DatasetSpec, data_dir: str, manual_dir: Optional[str] = None,
            force: bool = False) -> None:
  """Writes the dataset as array_record files under `data_dir`; `force`
  deletes what is there first (the dataset's own version directory only).

  `manual_dir` holds raw files for datasets prepared offline; it defaults to
  the spec's own, or to a scratch dir that the spec's `fetch` fills. Files
  TFDS extracts from a manual dir go to scratch too, not into `data_dir`.
  Datasets the spec `requires` are prepared first, where they are not yet.
  """
  from gan_jax.data import DATASETS

  if manual_dir:
    # The builders read raw files with tarfile, gzip and open.
    storage.require_local(manual_dir, "manual dir")
  for name in spec.requires:
    required = DATASETS.get(name)
    if not is_prepared(required, data_dir):
      prepare(required, data_dir)
  if spec.needs_tensorflow:
    _require_tensorflow(spec)
  builder = spec.builder(data_dir)
  if force and epath.Path(builder.data_dir).exists():
    epath.Path(builder.data_dir).rmtree()
    builder = spec.builder(data_dir)
  with tempfile.TemporaryDirectory() as scratch:
    manual_dir = manual_dir or spec.manual_dir
    if spec.fetch is not None:
      manual_dir = manual_dir or os.path.join(scratch, "manual")
      spec.fetch(manual_dir)
    download_config, download_dir = None, None
    if manual_dir:
      download_config = tfds.download.DownloadConfig(manual_dir=manual_dir)
      download_dir = os.path.join(scratch, "downloads")
    builder.download_and_prepare(
        download_dir=download_dir, file_format="array_record",
        download_config=download_config)
  _write_manifest(builder)


def _not_prepared(spec: DatasetSpec, data_dir: str) -> DataNotPreparedError:
  hint = f" {spec.prepare_hint}" if spec.prepare_hint else ""
  return DataNotPreparedError(
      f"Dataset '{spec.name}' is not prepared in {data_dir}. Prepare it with: "
      f"{prepare_command(spec.name, data_dir)}{hint}")


def load_split(spec: DatasetSpec, split: str, data_dir: str) -> dict[str, np.ndarray]:
  """Reads a prepared split into memory as a dict of stacked arrays.

  The first read decodes every record through the builder's data source,
  `spec.collate`s it chunk by chunk, and keeps the arrays beside the records
  (`<split>.arrays.npz`, or `<split>.<name>.arrays.npz` for a collated spec);
  later reads load that file, which is much faster than decoding again.
  """
  problem = find_damage(spec, data_dir)
  if problem is not None:
    raise damaged_error(spec, data_dir, problem)
  builder = spec.builder(data_dir)
  if not builder.is_prepared():
    raise _not_prepared(spec, data_dir)
  stem = split if spec.collate is None else f"{split}.{spec.name}"
  cache = epath.Path(builder.data_dir) / f"{stem}.arrays.npz"
  if cache.exists():
    try:
      with cache.open("rb") as f, np.load(f) as stored:
        return dict(stored)
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as error:
      log.warning("%s is unreadable (%s); decoding the records again.", cache, error)
  try:
    columns = _decode_records(spec, builder.as_data_source(split=split))
  except (OSError, RuntimeError, ValueError) as error:
    raise damaged_error(spec, data_dir, f"the {split} records are unreadable "
                        f"({_short_reason(error)})") from error
  arrays = {key: np.concatenate(parts) for key, parts in columns.items()}
  # Atomic: concurrent processes never see half a file.
  storage.write_atomically(cache, lambda f: np.savez(f, **arrays))
  return arrays


def _decode_records(spec: DatasetSpec, source) -> dict[str, list[np.ndarray]]:
  columns: dict[str, list[np.ndarray]] = {}
  for start in range(0, len(source), _READ_CHUNK):
    records = source.__getitems__(range(start, min(start + _READ_CHUNK, len(source))))
    if spec.collate is None:
      chunk = {key: np.stack([r[key] for r in records]) for key in records[0]}
    else:
      chunk = spec.collate(records)
    for key, value in chunk.items():
      columns.setdefault(key, []).append(value)
  return columns


def _short_reason(error: BaseException) -> str:
  lines = str(error).strip().splitlines()
  return f"{type(error).__name__}: {lines[0][:120]}" if lines else type(error).__name__


def load_eval_split(spec: DatasetSpec, split: str, data_dir: str,
                    limit: Optional[int] = None) -> dict[str, np.ndarray]:
  """A split (its first `limit` records, default all), preprocessed for
  evaluation (static binarisation where training binarises dynamically), as
  one dict of arrays."""
  preprocess = spec.eval_preprocess or spec.preprocess
  arrays = load_split(spec, split, data_dir)
  count = len(next(iter(arrays.values())))
  count = count if limit is None else min(limit, count)
  parts = []
  for start in range(0, count, _READ_CHUNK):
    index = np.arange(start, min(start + _READ_CHUNK, count))
    chunk = {key: value[index] for key, value in arrays.items()}
    parts.append(preprocess({**chunk, "index": index, "position": index}))
  return {key: np.concatenate([part[key] for part in parts]) for key in parts[0]}


class _ShuffledBatchSource:
  """Random-access source whose element `k` is this process's part of batch `k`."""

  def __init__(self, arrays: dict[str, np.ndarray], seed: int, global_batch_size: int,
               process_index: int, process_count: int):
    self._arrays = arrays
    self._num_records = len(next(iter(arrays.values())))
    self._seed = seed
    self._global_batch_size = global_batch_size
    self._local_batch_size = global_batch_size // process_count
    self._offset = process_index * self._local_batch_size

  def __len__(self) -> int:
    return sys.maxsize

  @functools.lru_cache(maxsize=2)
  def _permutation(self, epoch: int) -> np.ndarray:
    return np.random.default_rng([self._seed, epoch]).permutation(self._num_records)

  def positions(self, batch_index: int) -> np.ndarray:
    """Stream positions of this process's rows of batch `batch_index`."""
    start = batch_index * self._global_batch_size + self._offset
    return np.arange(start, start + self._local_batch_size)

  def record_indices(self, batch_index: int) -> np.ndarray:
    positions = self.positions(batch_index)
    epochs, within = np.divmod(positions, self._num_records)
    indices = np.empty_like(positions)
    for epoch in np.unique(epochs):
      mask = epochs == epoch
      indices[mask] = self._permutation(int(epoch))[within[mask]]
    return indices

  def __getitem__(self, batch_index: int) -> dict[str, np.ndarray]:
    """The rows' records, with their record indices and stream positions
    (which key any randomness in the preprocessing)."""
    indices = self.record_indices(batch_index)
    return {**{key: array[indices] for key, array in self._arrays.items()},
            "index": indices, "position": self.positions(batch_index)}


class InputPipeline:
  """Serves, for each train step, its real batches as global arrays.

  A step that consumes `n` batches gets an array pytree shaped
  (n, global_batch, ...), sharded over the mesh's data axis. Given
  `seed_axis` (the data seeds of a job of several seeds, `gan_jax.seeds`),
  (num_seeds, n, global_batch, ...): entry `i` in the order of
  `seed_axis[i]`, what a single-seed run with that seed reads. Every seed
  reads its batches `position ..` at the same step, so one position is each
  seed's position.
  """

  def __init__(self, arrays: dict[str, np.ndarray], preprocess: Callable[[dict], dict], *,
               global_batch_size: int, batches_per_step: int, seed: int, mesh: Mesh,
               prefetch: int = 2, seed_axis: Optional[Sequence[int]] = None):
    self._datasets = [
        grain.MapDataset.source(_ShuffledBatchSource(
            arrays, data_seed, global_batch_size, jax.process_index(),
            jax.process_count())).map(preprocess)
        for data_seed in (seed_axis or [seed])]
    self._seeded = seed_axis is not None
    self._global_batch_size = global_batch_size
    self._batches_per_step = batches_per_step
    self._sharding = NamedSharding(mesh, SEEDED_BATCH_SPEC if self._seeded else BATCH_SPEC)
    self._prefetch = prefetch

  def local_batches(self, position: int) -> dict[str, np.ndarray]:
    """This process's rows of batches `position .. position + n - 1`, stacked
    (on a seed axis too, when there is one)."""
    per_seed = []
    for dataset in self._datasets:
      parts = [dataset[position + i] for i in range(self._batches_per_step)]
      per_seed.append(jax.tree.map(lambda *xs: np.stack(xs), *parts))
    if not self._seeded:
      return per_seed[0]
    return jax.tree.map(lambda *xs: np.stack(xs), *per_seed)

  def global_batches(self, position: int):
    local = self.local_batches(position)
    batch_axis = 2 if self._seeded else 1
    return jax.tree.map(
        lambda x: jax.make_array_from_process_local_data(
            self._sharding, x,
            (*x.shape[:batch_axis], self._global_batch_size, *x.shape[batch_axis + 1:])),
        local)

  def iterate(self, position: int) -> Iterator[tuple[int, object]]:
    """Yields (position after this step, batches), prefetching in a thread.

    The caller records the yielded position only once the step has consumed
    the batches, so a checkpoint never counts a prefetched batch as read.
    """
    buffer: queue.Queue = queue.Queue(maxsize=self._prefetch)
    stop = threading.Event()

    def produce(pos):
      try:
        while not stop.is_set():
          item = (pos + self._batches_per_step, self.global_batches(pos))
          pos += self._batches_per_step
          while not stop.is_set():
            try:
              buffer.put(item, timeout=0.1)
              break
            except queue.Full:
              continue
      except BaseException as error:  # surfaced in the consumer
        buffer.put(error)

    thread = threading.Thread(target=produce, args=(position,), daemon=True)
    thread.start()
    try:
      while True:
        item = buffer.get()
        if isinstance(item, BaseException):
          raise item
        yield item
    finally:
      stop.set()
      thread.join(timeout=5)
