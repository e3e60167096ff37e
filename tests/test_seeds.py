"""Several seeds as one job (config num_seeds, gan_jax.seeds): each seed
against its own single-seed run, resume, device count, and divergence."""

import logging
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

from configs import ring8
from gan_jax import backend, seeds
from gan_jax.errors import UserError
from gan_jax.families import build_family
from gan_jax.metric_writer import read_metrics
from gan_jax.registry import ConfigError
from gan_jax.run import restore_training_state
from gan_jax.train import train_and_evaluate

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIRST_SEED, NUM_SEEDS, NUM_STEPS = 4, 3, 12
# A batched (vmapped) matmul may use other kernels than the unbatched one, and
# XLA may fuse an unrolled program differently, so a job's seed matches its
# single run within round-off: about 3e-7 after 20 steps here. Seeds differ
# from each other by more than 1e-2 (checked below).
TOLERANCE = dict(rtol=1e-5, atol=2e-5)


def _config(**overrides):
  c = ring8.get_config("tiny")
  c.num_train_steps = NUM_STEPS
  c.n_critic = 2
  c.log_every_steps = 3
  c.checkpoint_every_steps = c.eval_every_steps = 6
  c.eval.num_samples = 200
  c.seed = FIRST_SEED
  for key, value in overrides.items():
    c[key] = value
  return c


def _leaves(state):
  return [np.asarray(x) for x in jax.tree.leaves(state)]


def _whole_state(workdir):
  return restore_training_state(workdir)[2]


@pytest.fixture(scope="module")
def job(tmp_path_factory, data_dir):
  workdir = str(tmp_path_factory.mktemp("job"))
  result = train_and_evaluate(_config(num_seeds=NUM_SEEDS), workdir)
  return workdir, result


@pytest.fixture(scope="module")
def single_runs(tmp_path_factory, data_dir):
  workdirs = []
  for i in range(NUM_SEEDS):
    workdir = str(tmp_path_factory.mktemp(f"single{i}"))
    train_and_evaluate(_config(seed=FIRST_SEED + i), workdir)
    workdirs.append(workdir)
  return workdirs


def test_each_seed_of_a_job_follows_its_single_seed_run(job, single_runs):
  workdir, result = job
  state = _whole_state(workdir)
  assert np.asarray(state.step).tolist() == [NUM_STEPS] * NUM_SEEDS
  rows = read_metrics(workdir)
  singles = []
  for i, single in enumerate(single_runs):
    alone = _whole_state(single)
    singles.append(_leaves(alone))
    for mine, theirs in zip(_leaves(seeds.seed_state(state, i)), singles[-1]):
      np.testing.assert_allclose(mine, theirs, **TOLERANCE)
    for row, single_row in zip(rows, read_metrics(single), strict=True):
      assert row["step"] == single_row["step"]
      for name in ("loss_d", "loss_g", "eval/modes"):
        if name in single_row:
          np.testing.assert_allclose(row[f"{name}/seed_{i}"], single_row[name], **TOLERANCE)
  # The tolerance is far below what a seed changes.
  assert max(np.max(np.abs(a - b)) for a, b in zip(singles[0], singles[1])
             if a.dtype.kind == "f") > 1e-2
  # The logged row is the mean of the seeds' values; results carry the error bar.
  last = [row for row in rows if "loss_d" in row][-1]
  assert last["loss_d"] == pytest.approx(np.mean([last[f"loss_d/seed_{i}"]
                                                  for i in range(NUM_SEEDS)]))
  assert os.path.isdir(os.path.join(workdir, "tensorboard", f"seed_{NUM_SEEDS - 1}"))
  per_seed = [s["high_quality_fraction"] for s in result["seeds"]]
  assert result["high_quality_fraction"] == pytest.approx(np.mean(per_seed))
  assert result["high_quality_fraction_stderr"] == pytest.approx(
      np.std(per_seed, ddof=1) / np.sqrt(NUM_SEEDS))
  assert [s["seed"] for s in result["seeds"]] == [4, 5, 6]


def test_one_seed_keeps_the_plain_state(data_dir):
  config = _config(num_seeds=1)
  family = build_family(config, (2,))
  with_key = jax.eval_shape(lambda: seeds.create_state(family, config))
  plain = jax.eval_shape(lambda: family.create_state(config))
  def layout(state):  # what a checkpoint records: each leaf's path and shape
    return [(jax.tree_util.keystr(path), leaf.shape)
            for path, leaf in jax.tree_util.tree_flatten_with_path(state)[0]]

  assert layout(with_key) == layout(plain)
  several = jax.eval_shape(lambda: seeds.create_state(family, _config(num_seeds=2)))
  assert [x.shape for x in jax.tree.leaves(several)] == [
      (2, *x.shape) for x in jax.tree.leaves(plain)]
  with pytest.raises(UserError, match="indices 0..0"):
    seeds.one_seed(config, plain, 1)


def test_a_job_resumed_in_a_new_process_is_bitwise_identical(job, tmp_path):
  workdir = str(tmp_path / "resumed")
  train_and_evaluate(_config(num_seeds=NUM_SEEDS, num_train_steps=6), workdir)
  subprocess.run([sys.executable, "-m", "gan_jax.main", "--config=configs/ring8.py:tiny",
                  f"--workdir={workdir}", f"--config.seed={FIRST_SEED}",
                  f"--config.num_seeds={NUM_SEEDS}", "--config.n_critic=2",
                  f"--config.num_train_steps={NUM_STEPS}", "--config.log_every_steps=3",
                  "--config.checkpoint_every_steps=6", "--config.eval_every_steps=6",
                  "--config.eval.num_samples=200"],
                 cwd=REPO_ROOT, check=True, capture_output=True)
  straight = _whole_state(job[0])
  resumed = _whole_state(workdir)
  for a, b in zip(_leaves(straight), _leaves(resumed)):
    np.testing.assert_array_equal(a, b)
  def without_speed(workdir):
    return [{k: v for k, v in row.items() if k != "steps_per_sec"}
            for row in read_metrics(workdir)]

  assert without_speed(workdir) == without_speed(job[0])


def test_one_device_and_four_give_the_same_job(job, data_dir):
  """The job ran on four devices with CPU's seed map (unrolled); one device
  with vmap, other platforms' map, follows it."""
  from gan_jax.data import DATASETS, pipeline
  from gan_jax.run import load_training_data
  from gan_jax.sharding import make_mesh, replicated
  from gan_jax.step import make_train_step

  config = _config(num_seeds=NUM_SEEDS)
  family = build_family(config, (2,))
  mesh = make_mesh(jax.devices()[:1])
  spec = DATASETS.get("ring8")
  data = pipeline.InputPipeline(
      load_training_data(spec, data_dir), spec.preprocess, global_batch_size=config.batch_size,
      batches_per_step=2, seed=config.seed, mesh=mesh, seed_axis=seeds.data_seeds(config))
  state = jax.jit(lambda: seeds.create_state(family, config),
                  out_shardings=replicated(mesh))()
  step = make_train_step(family, mesh, num_seeds=NUM_SEEDS, seed_map="vmap")
  for k in range(NUM_STEPS):
    state, _ = step(state, data.global_batches(2 * k))
  four = _whole_state(job[0])
  assert len(four.rng.sharding.device_set) == 4
  for a, b in zip(_leaves(state), _leaves(four)):
    np.testing.assert_allclose(a, b, **TOLERANCE)


def test_an_unknown_seed_map_is_refused(monkeypatch):
  monkeypatch.setenv(backend.SEED_MAP_ENV, "pmap")
  with pytest.raises(ConfigError, match="valid: vmap, unrolled"):
    backend.seed_map("cpu")
  monkeypatch.delenv(backend.SEED_MAP_ENV)
  assert backend.seed_map("cpu") == "unrolled" and backend.seed_map("gpu") == "vmap"
  assert backend.record("cpu")["seed_map"] == "unrolled"


def test_a_diverging_seed_is_reported_and_frozen(job, tmp_path, monkeypatch, caplog):
  """Seed index 1 starts with a discriminator whose weights overflow its
  outputs: it diverges at step 1 and keeps its initial state; the other
  seeds run the same program on the same data as the job's, bitwise."""
  create = seeds.create_state

  def poisoned(family, config):
    state = create(family, config)
    d = state.players["discriminator"]
    params = jax.tree.map(lambda w: w.at[1].multiply(1e38), d.params)
    return state.replace(players={**state.players, "discriminator": d.replace(params=params)})

  monkeypatch.setattr(seeds, "create_state", poisoned)
  workdir = str(tmp_path / "diverging")
  with caplog.at_level(logging.WARNING, logger="gan_jax"):
    result = train_and_evaluate(_config(num_seeds=NUM_SEEDS), workdir)
  assert "Seed index 1 (seed 5) diverged at step 1" in caplog.text
  assert result["step"] == NUM_STEPS and result["num_live_seeds"] == 2
  assert result["seeds"][1]["diverged_at_step"] == 1
  assert "loss_d/seed_1" not in read_metrics(workdir)[-1]
  frozen = _whole_state(workdir)
  healthy = _whole_state(job[0])
  assert np.asarray(frozen.step).tolist() == [NUM_STEPS, 0, NUM_STEPS]
  config = _config(num_seeds=NUM_SEEDS)
  initial = poisoned(build_family(config, (2,)), config)
  for index, reference in ((0, healthy), (1, initial), (2, healthy)):
    for a, b in zip(_leaves(seeds.seed_state(frozen, index)),
                    _leaves(seeds.seed_state(reference, index))):
      np.testing.assert_array_equal(a, b)
