"""Two processes on 127.0.0.1 form one JAX cluster (gloo collectives on CPU,
2 devices each) and must train like one process with 4 devices."""

import json
import os
import socket
import subprocess
import sys

import jax
import numpy as np

from configs import ring8
from gan_jax.metric_writer import read_metrics
from gan_jax.train import restore_for_inference, train_and_evaluate

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _free_port():
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def _cluster_run(workdir, num_steps):
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2",
             PYTHONPATH=REPO_ROOT)
  port = _free_port()
  procs = [subprocess.Popen(
      [sys.executable, os.path.join(REPO_ROOT, "tests", "multiprocess_worker.py"),
       str(port), str(pid), workdir, str(num_steps)],
      cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
      for pid in range(2)]
  outputs = [p.communicate(timeout=300)[0].decode() for p in procs]
  for p, out in zip(procs, outputs):
    assert p.returncode == 0, out[-3000:]


def test_two_processes_train_like_one_with_four_devices(tmp_path, ring8_arrays):
  cluster = str(tmp_path / "cluster")
  _cluster_run(cluster, 10)  # writes a checkpoint at step 10 from both processes
  _cluster_run(cluster, 20)  # both processes restore it and continue

  single = str(tmp_path / "single")
  config = ring8.get_config("tiny")
  config.num_train_steps = 20
  config.n_critic = 2
  train_and_evaluate(config, single)

  _, _, a = restore_for_inference(cluster)
  _, _, b = restore_for_inference(single)
  assert int(a.step) == int(b.step) == 20
  budget = 2.0 * config.optimizer.generator.learning_rate * 20 * config.n_critic
  for x, y in zip(jax.tree.leaves(a.players), jax.tree.leaves(b.players)):
    np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-5, atol=budget)

  # Only process 0 logged: one row per logging step, as in the single run.
  cluster_rows, single_rows = read_metrics(cluster), read_metrics(single)
  assert [r["step"] for r in cluster_rows] == [r["step"] for r in single_rows]
  for r, s in zip(cluster_rows, single_rows):
    for key in r:
      if key.startswith("loss"):
        np.testing.assert_allclose(r[key], s[key], rtol=1e-4)
  with open(os.path.join(cluster, "environment-10.json")) as f:
    env = json.load(f)
  assert env["process_count"] == 2 and len(env["devices"]) == 4
