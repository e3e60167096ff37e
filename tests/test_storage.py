"""Remote storage (`gan_jax.storage`): a gs:// workdir runs the same code as
a local one, through a stand-in GCS (tests/fake_gcs.py: epath via fsspec,
Orbax's arrays via TensorStore's real GCS driver); URIs this install cannot
reach are refused with one line before anything is written."""

import os
import struct
import subprocess
import sys

import jax
import numpy as np
import pytest

import fake_gcs
from configs import ring8
from gan_jax import storage
from gan_jax.data import DATASETS
from gan_jax.data import pipeline as pipeline_lib
from gan_jax.evaluation.evaluate import evaluate_workdir
from gan_jax.metric_writer import read_metrics
from gan_jax.registry import ConfigError
from gan_jax.run import resolved_dataset, restore_for_inference, restore_training_state
from gan_jax.sample import write_samples
from gan_jax.train import train_and_evaluate

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUCKET = "gan-jax-test"


def _tiny(num_steps):
  c = ring8.get_config("tiny")
  c.num_train_steps = num_steps
  c.n_critic = 2  # as tests/test_train.py: the compiled step is shared
  c.keep_checkpoints = 1  # so Orbax deletes a checkpoint in the bucket too
  return c


@pytest.fixture
def gcs(tmp_path, monkeypatch):
  """The stand-in bucket's folder; gs://gan-jax-test/... lands there."""
  root = tmp_path / "gcs"
  (root / BUCKET).mkdir(parents=True)
  server = fake_gcs.install(str(root), monkeypatch)
  yield root / BUCKET
  server.close()


def _files(directory) -> set[str]:
  return {os.path.relpath(os.path.join(d, f), directory)
          for d, _, files in os.walk(directory) for f in files}


def _scalars(directory) -> set[tuple]:
  """(tag, step, value) of every scalar in the TensorBoard event files."""
  from tensorboardX.proto import event_pb2

  found = set()
  for path in directory.glob("events.out.tfevents.*"):
    data, offset = path.read_bytes(), 0
    while offset < len(data):
      (length,) = struct.unpack("<Q", data[offset:offset + 8])
      event = event_pb2.Event.FromString(data[offset + 12:offset + 12 + length])
      offset += 12 + length + 4
      found |= {(v.tag, event.step, v.simple_value) for v in event.summary.value
                if v.HasField("simple_value") and v.tag != "steps_per_sec"}
  return found


def _losses(workdir):
  return [{k: v for k, v in row.items() if k != "steps_per_sec"}
          for row in read_metrics(workdir)]


@pytest.mark.slow
def test_a_gs_workdir_trains_resumes_evaluates_and_samples_as_a_local_one(
    gcs, tmp_path, data_dir, monkeypatch):
  monkeypatch.chdir(tmp_path)
  local, remote = tmp_path / "local", f"gs://{BUCKET}/runs/x"
  train_and_evaluate(_tiny(20), str(local))
  first = _tiny(10)
  first.profile.start_step, first.profile.num_steps = 2, 1  # traced locally, then copied
  train_and_evaluate(first, remote)
  train_and_evaluate(_tiny(20), remote)  # resumes from the bucket's checkpoint 10

  bucket_run = gcs / "runs" / "x"
  assert not (tmp_path / "gs:").exists()
  # The same files as the local run's, but the second launch's environment
  # record; Orbax marks a finished checkpoint with a commit file in a bucket
  # where it renames a folder on a local disk.
  expected = _files(local) | {"environment-10.json"}
  expected -= {".lock"}
  tensorboard = {f for f in expected if f.startswith("tensorboard/")}
  written = _files(bucket_run)
  assert any(f.startswith("profile/") and f.endswith(".xplane.pb") for f in written)
  others = ("tensorboard/", "checkpoints/", "profile/")
  assert ({f for f in written if not f.startswith(others)}
          == {f for f in expected if not f.startswith(others)})
  assert {f.split("/")[1] for f in written if f.startswith("checkpoints/")} == {"20"}
  assert len(tensorboard) == 1 and any(f.startswith("tensorboard/") for f in written)
  for name in ("config.json", "samples/step_0000010.png", "samples/step_0000020.png"):
    assert (bucket_run / name).read_bytes() == (local / name).read_bytes(), name

  assert _losses(remote) == _losses(local)
  remote_scalars = _scalars(bucket_run / "tensorboard")
  local_scalars = _scalars(local / "tensorboard")
  # Both launches' event files are there, unless they began in the same
  # second (tensorboardX names them by the second, locally too).
  assert {s for s in local_scalars if s[1] > 10} <= remote_scalars <= local_scalars

  _, _, remote_state = restore_training_state(remote)
  _, _, local_state = restore_training_state(str(local))
  assert int(remote_state.step) == 20
  for a, b in zip(jax.tree.leaves(remote_state), jax.tree.leaves(local_state)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))

  assert (evaluate_workdir(remote, num_samples=64)
          == evaluate_workdir(str(local), num_samples=64))
  outputs = {}
  for workdir, output in ((remote, f"gs://{BUCKET}/out/samples.npy"),
                          (str(local), str(tmp_path / "out" / "samples.npy"))):
    config, family, state = restore_for_inference(workdir)
    write_samples(family, state, resolved_dataset(config), kind="raw", output=output,
                  num=16, seed=0)
    outputs[workdir] = np.load(output.replace(f"gs://{BUCKET}", str(gcs)))
  np.testing.assert_array_equal(outputs[remote], outputs[str(local)])


def test_resolve_names_the_client_a_gs_uri_lacks(gcs, monkeypatch):
  assert str(storage.resolve(f"gs://{BUCKET}/x", "workdir")) == f"gs://{BUCKET}/x"
  monkeypatch.setitem(sys.modules, "google.cloud.storage", None)  # blocks the import
  with pytest.raises(ConfigError, match="needs google-cloud-storage, which this install"):
    storage.resolve(f"gs://{BUCKET}/x", "workdir")


def _skip_if_gs_is_reachable(uri):
  if uri.startswith("gs://") and not storage.missing_clients("gs"):
    pytest.skip("this install has gs:// clients: a bucket named 'bucket' might be reached")


@pytest.mark.parametrize("workdir", ["gs://bucket/runs/x", "s3://bucket/runs/x",
                                     "memory://runs/x"])
def test_an_unreachable_uri_workdir_is_refused_before_anything_is_written(
    tmp_path, monkeypatch, workdir):
  _skip_if_gs_is_reachable(workdir)
  monkeypatch.chdir(tmp_path)
  with pytest.raises(ConfigError, match="mount the bucket"):
    train_and_evaluate(_tiny(20), workdir)
  assert os.listdir(tmp_path) == []  # no local folder named after the scheme


def test_the_cli_refuses_an_unreachable_uri_with_one_line(tmp_path):
  _skip_if_gs_is_reachable("gs://")
  result = subprocess.run(
      [sys.executable, "-m", "gan_jax.main", f"--config={REPO_ROOT}/configs/ring8.py:tiny",
       "--workdir=gs://bucket/runs/x"],
      cwd=tmp_path, capture_output=True, text=True, timeout=120,
      env={**os.environ, "PYTHONPATH": REPO_ROOT})
  lines = result.stderr.strip().splitlines()
  assert result.returncode == 2, result.stderr
  assert len(lines) == 1 and lines[0].startswith("error: The workdir gs://bucket/runs/x "
                                                "needs "), result.stderr
  assert os.listdir(tmp_path) == []


def test_local_only_inputs_refuse_a_uri(data_dir):
  with pytest.raises(ConfigError, match="must be a local path"):
    pipeline_lib.prepare(DATASETS.get("ring8"), data_dir, manual_dir="gs://bucket/raw")
