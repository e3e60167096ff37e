"""Synthetic TFDS datasets and the Grain input pipeline."""

import jax
import numpy as np
import pytest

from gan_jax.data import DATASETS, DataNotPreparedError
from gan_jax.data import pipeline as pipeline_lib
from gan_jax.data import synthetic
from gan_jax.sharding import make_mesh


def _source(num_records, batch, process_index=0, process_count=1, seed=0):
  arrays = {"x": np.arange(num_records)}
  return pipeline_lib._ShuffledBatchSource(arrays, seed, batch, process_index, process_count)


def test_prepared_ring8_matches_its_definition(ring8_arrays):
  x = ring8_arrays["x"]
  assert x.shape == (synthetic.NUM_TRAIN, 2) and x.dtype == np.float32
  means = synthetic.ring8_means()
  dists = np.linalg.norm(x[:, None] - means[None], axis=-1)
  nearest = dists.argmin(1)
  residual = x - means[nearest]
  np.testing.assert_allclose(residual.std(), 0.01, rtol=0.02)
  counts = np.bincount(nearest, minlength=8) / len(x)
  np.testing.assert_allclose(counts, 1 / 8, atol=0.005)


def test_grid25_means():
  means = synthetic.grid25_means()
  assert means.shape == (25, 2)
  assert sorted(set(means[:, 0])) == [-4, -2, 0, 2, 4]


def test_each_epoch_is_a_permutation():
  source = _source(12, 4)
  for epoch in range(3):
    seen = np.concatenate([source[3 * epoch + k]["x"] for k in range(3)])
    assert sorted(seen) == list(range(12))
  first = np.concatenate([source[k]["x"] for k in range(3)])
  second = np.concatenate([source[3 + k]["x"] for k in range(3)])
  assert not np.array_equal(first, second)  # reshuffled each epoch


def test_order_depends_only_on_seed():
  a, b = _source(100, 10, seed=1), _source(100, 10, seed=1)
  np.testing.assert_array_equal(a[7]["x"], b[7]["x"])
  assert not np.array_equal(a[7]["x"], _source(100, 10, seed=2)[7]["x"])


@pytest.mark.parametrize("process_count", [2, 4])
def test_process_shards_tile_the_global_batch(process_count):
  whole = _source(50, 8)
  parts = [_source(50, 8, p, process_count) for p in range(process_count)]
  for k in (0, 5, 13):  # 13 crosses an epoch boundary inside the batch
    np.testing.assert_array_equal(
        np.concatenate([part[k]["x"] for part in parts]), whole[k]["x"])


def test_global_batches_are_sharded_over_the_mesh():
  mesh = make_mesh(jax.devices()[:4])
  arrays = {"x": np.random.default_rng(0).normal(size=(64, 2)).astype(np.float32)}
  pipe = pipeline_lib.InputPipeline(arrays, DATASETS.get("ring8").preprocess,
                                    global_batch_size=16, batches_per_step=3, seed=0,
                                    mesh=mesh)
  batches = pipe.global_batches(6)
  assert batches["x"].shape == (3, 16, 2)
  assert len(batches["x"].sharding.device_set) == 4
  np.testing.assert_array_equal(np.asarray(batches["x"]), pipe.local_batches(6)["x"])
  # Batches 6, 7, 8 are the step's three critic batches.
  np.testing.assert_array_equal(pipe.local_batches(6)["x"][1], pipe.local_batches(7)["x"][0])


def test_prefetching_iterator_yields_consecutive_positions():
  mesh = make_mesh(jax.devices()[:2])
  arrays = {"x": np.arange(40, dtype=np.float32)[:, None].repeat(2, 1)}
  pipe = pipeline_lib.InputPipeline(arrays, DATASETS.get("ring8").preprocess,
                                    global_batch_size=4, batches_per_step=2, seed=3,
                                    mesh=mesh, prefetch=3)
  iterator = pipe.iterate(10)
  for expected_position in (12, 14, 16, 18):
    position, batches = next(iterator)
    assert position == expected_position
    np.testing.assert_array_equal(np.asarray(batches["x"]),
                                  pipe.local_batches(position - 2)["x"])
  iterator.close()


def test_missing_data_says_how_to_prepare(tmp_path):
  with pytest.raises(DataNotPreparedError) as error:
    pipeline_lib.load_split(DATASETS.get("grid25"), "train", str(tmp_path))
  assert f"python -m gan_jax.prepare --dataset=grid25 --data_dir={tmp_path}" in str(error.value)


def test_unknown_dataset_lists_valid_names():
  from gan_jax.registry import ConfigError
  with pytest.raises(ConfigError, match="grid25, mnist, normal1d, ring8"):
    DATASETS.get("ring9")


def test_runs_launched_together_make_a_synthetic_dataset_once(tmp_path):
  """A second launch that finds the dataset being made waits for it instead
  of making it too (which raced TFDS's final rename and crashed one run)."""
  import subprocess
  import sys

  data_dir = str(tmp_path)
  spec = DATASETS.get("ring8")
  child_code = (
      "import logging, sys; logging.basicConfig(level=logging.INFO, stream=sys.stderr)\n"
      "from gan_jax.data import DATASETS; from gan_jax.data import pipeline\n"
      f"pipeline.prepare_if_needed(DATASETS.get('ring8'), {data_dir!r})\n"
      "print('READY')\n")
  with pipeline_lib._exclusive_preparation(spec, data_dir):
    # The child starts while this process holds the lock and has made nothing yet.
    child = subprocess.Popen([sys.executable, "-c", child_code], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    with pytest.raises(subprocess.TimeoutExpired):
      child.wait(timeout=3)  # blocked on the lock, not making its own copy
    pipeline_lib.prepare(spec, data_dir)
    made = (tmp_path / "ring8").stat().st_mtime_ns
  stdout, stderr = child.communicate(timeout=60)
  assert child.returncode == 0, stderr[-2000:]
  assert stdout.strip() == "READY"
  assert "Preparing dataset ring8" not in stderr  # found it prepared
  assert (tmp_path / "ring8").stat().st_mtime_ns == made
