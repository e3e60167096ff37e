"""Fault injection: bad values, damaged files and double launches (issue 21).

Each test is one row of the issue's table: what the user did, and what must
happen now (exit status or exception, the message, and what is on disk).
Most run in-process; the few that need the real CLI (exit status, stderr,
two processes) run `configs/ring8.py:tiny` in a subprocess.
"""

import hashlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys

import jax
import ml_collections
import numpy as np
import pytest

from configs import ring8
from gan_jax import cli, config_validation
from gan_jax.checkpoint import (REJECTED_SUBDIR, CheckpointError, Checkpointer,
                                NonFiniteStateError)
from gan_jax.data import DATASETS, DataDamagedError, prepare_command
from gan_jax.data import pipeline as pipeline_lib
from gan_jax.errors import UserError
from gan_jax.evaluation.evaluate import generate
from gan_jax.families import build_family
from gan_jax.metric_writer import METRICS_FILE, MetricWriter, read_metrics
from gan_jax.registry import ConfigError
from gan_jax.run import restore_for_inference, restore_training_state
from gan_jax.sharding import make_mesh, replicated
from gan_jax.train import train_and_evaluate
from gan_jax.workdir_lock import WorkdirLock, WorkdirLockedError

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _tiny(num_steps=20, **overrides):
  c = ring8.get_config("tiny")
  c.num_train_steps = num_steps
  c.eval.num_samples = 100
  for key, value in overrides.items():
    c[key] = value
  return c


def _cli(module, *args, env=None):
  return subprocess.run([sys.executable, "-m", module, *args], cwd=REPO_ROOT,
                        capture_output=True, text=True, env={**os.environ, **(env or {})},
                        timeout=120)


def _assert_one_line_user_error(result, *fragments):
  lines = result.stderr.strip().splitlines()
  assert result.returncode == 2, result.stderr
  assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
  for fragment in fragments:
    assert fragment in lines[0]


def _tree(path):
  """Every file under `path` with its SHA-256: what is on disk."""
  found = {}
  for root, _, names in os.walk(path):
    for name in names:
      full = os.path.join(root, name)
      with open(full, "rb") as f:
        found[os.path.relpath(full, path)] = hashlib.sha256(f.read()).hexdigest()
  return found


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, data_dir):
  """A finished 20-step run with checkpoints at 10 and 20."""
  workdir = str(tmp_path_factory.mktemp("finished"))
  train_and_evaluate(_tiny(), workdir)
  return workdir


@pytest.fixture
def run_copy(finished_run, tmp_path):
  workdir = str(tmp_path / "copy")
  shutil.copytree(finished_run, workdir)
  return workdir


def _abstract(config):
  family = build_family(config, (2,))
  return jax.eval_shape(lambda: family.create_state(config))


# --- Validate first, write after --------------------------------------------

@pytest.mark.parametrize("key, value", [
    ("keep_checkpoints", 0), ("eval_every_steps", 0), ("checkpoint_every_steps", 0),
    ("log_every_steps", 0), ("pack_size", 0), ("num_train_steps", 0),
    ("num_train_steps", -5), ("optimizer.generator.learning_rate", -1.0),
    ("optimizer.generator.learning_rate", float("nan")),
    ("optimizer.discriminator.learning_rate", float("inf")), ("batch_size", "32"),
])
def test_invalid_values_are_refused_before_anything_is_written(tmp_path, key, value):
  config = ml_collections.ConfigDict(_tiny().to_dict(), type_safe=False)
  *parents, field = key.split(".")
  node = config
  for parent in parents:
    node = node[parent]
  node[field] = value
  workdir = tmp_path / "run"
  with pytest.raises(ConfigError, match=f"Invalid config: {key}="):
    train_and_evaluate(config, str(workdir))
  assert not workdir.exists()


def test_every_shipped_config_is_valid():
  import glob
  import importlib
  for path in glob.glob(os.path.join(REPO_ROOT, "configs", "*.py")):
    name = os.path.basename(path)[:-3]
    if name != "__init__":
      module = importlib.import_module(f"configs.{name}")
      assert config_validation.problems(module.get_config()) == [], name
      assert config_validation.problems(module.get_config("tiny")) == [], name


def test_unknown_keys_and_config_arguments_get_a_suggestion():
  value = "configs/ring8.py:tiny"
  message = cli.unknown_override(["prog", "--config.lossname=hinge"], value)
  assert "no key 'lossname'" in message and "--config.loss.name" in message
  assert cli.unknown_override(["prog", "--config.loss.name=hinge"], value) is None
  with pytest.raises(UserError, match="unknown argument ':tnyi'.*Did you mean ':tiny'"):
    cli.check_config_argument("configs/ring8.py:tnyi")


def test_failed_restore_under_allowed_change_leaves_config_json(run_copy):
  before = _tree(run_copy)
  config = _tiny(allow_config_change=True)
  config.generator.hidden_units = 64
  with pytest.raises(CheckpointError, match="does not fit this config"):
    train_and_evaluate(config, run_copy)
  after = _tree(run_copy)
  assert {k: v for k, v in after.items() if k != ".lock"} == {
      k: v for k, v in before.items() if k != ".lock"}
  config_back, _, state = restore_for_inference(run_copy)  # what evaluate/sample do
  assert config_back.generator.hidden_units == 128 and int(state.step) == 20


def test_a_config_json_without_checkpoints_does_not_bind(tmp_path):
  """A run that failed before its first checkpoint leaves nothing to resume."""
  from gan_jax import provenance

  (tmp_path / "config.json").write_text(json.dumps({"loss": {"name": "hinge"}}))
  provenance.check_config(_tiny(), tmp_path)
  (tmp_path / "checkpoints" / "10").mkdir(parents=True)
  with pytest.raises(ConfigError, match="holds a run with a different config"):
    provenance.check_config(_tiny(), tmp_path)


# --- Checkpoints: retention, verification, fallback -------------------------

def test_lower_keep_checkpoints_on_a_finished_run_deletes_nothing(run_copy):
  rows = read_metrics(run_copy)
  train_and_evaluate(_tiny(keep_checkpoints=1), run_copy)
  assert Checkpointer(run_copy).all_steps() == [10, 20]
  assert read_metrics(run_copy) == rows  # relaunching a finished run adds no rows


def _largest_file(directory):
  files = [os.path.join(root, name) for root, _, names in os.walk(directory)
           for name in names]
  return max(files, key=os.path.getsize)


def _truncate(path):
  with open(path, "r+b") as f:
    f.truncate(os.path.getsize(path) // 2)


def _overwrite_8_bytes(path):
  with open(path, "r+b") as f:
    f.seek(os.path.getsize(path) // 2)
    f.write(b"\x7f" * 8)


def _flip_one_bit(path):
  with open(path, "r+b") as f:
    f.seek(os.path.getsize(path) // 2)
    byte = f.read(1)[0]
    f.seek(-1, 1)
    f.write(bytes([byte ^ 0x10]))


@pytest.mark.parametrize("damage, target", [
    (_truncate, "data file"), (_truncate, "manifest"),
    (_overwrite_8_bytes, "data file"), (_flip_one_bit, "data file"),
])
def test_damaged_newest_checkpoint_is_moved_aside(run_copy, caplog, damage, target):
  newest = os.path.join(run_copy, "checkpoints", "20")
  if target == "manifest":
    damage(os.path.join(newest, "state", "manifest.ocdbt"))
  else:
    damage(_largest_file(os.path.join(newest, "state")))  # the array data
  checkpointer = Checkpointer(run_copy)
  with caplog.at_level(logging.WARNING, logger="gan_jax"):
    state, _ = checkpointer.restore_latest(_abstract(_tiny()), replicated(make_mesh()))
  checkpointer.close()
  assert int(state.step) == 10
  warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
  # One line: Orbax's failed reads must not surface as asyncio tracebacks.
  assert len(warnings) == 1 and "Checkpoint 20 is damaged" in warnings[0]
  assert "good" not in warnings[0]
  assert Checkpointer(run_copy).all_steps() == [10]
  assert os.listdir(os.path.join(run_copy, REJECTED_SUBDIR)) == ["20"]


def test_fallback_resume_ends_bitwise_equal_to_an_uninterrupted_run(
    run_copy, finished_run, assert_same_checkpoints):
  _flip_one_bit(_largest_file(os.path.join(run_copy, "checkpoints", "20", "state")))
  with open(os.path.join(run_copy, METRICS_FILE), "a") as f:
    f.write('{"step": 25, "loss_d": 0.')  # a crash mid-write
  train_and_evaluate(_tiny(), run_copy)
  assert_same_checkpoints(finished_run, run_copy)
  strip = lambda rows: [{k: v for k, v in r.items() if k != "steps_per_sec"} for r in rows]
  assert strip(read_metrics(run_copy)) == strip(read_metrics(finished_run))


def test_no_checkpoint_left_is_one_clear_error(run_copy):
  for step in ("10", "20"):
    _truncate(os.path.join(run_copy, "checkpoints", step, "state", "manifest.ocdbt"))
  with pytest.raises(CheckpointError, match=r"No checkpoint .* restores: steps \[20, 10\]"):
    train_and_evaluate(_tiny(), run_copy)
  assert sorted(os.listdir(os.path.join(run_copy, REJECTED_SUBDIR))) == ["10", "20"]


def test_a_non_finite_state_is_never_saved(finished_run, tmp_path):
  """Guards the check in `Checkpointer.save` itself: a state can turn NaN in
  the update after finite metrics were logged."""
  _, _, state = restore_for_inference(finished_run)
  params = state.players["generator"].params
  first = jax.tree.leaves(params)[0]
  poisoned = jax.tree.map(lambda x: x.at[(0,) * x.ndim].set(np.nan) if x is first else x,
                          params)
  players = dict(state.players)
  players["generator"] = players["generator"].replace(params=poisoned)
  checkpointer = Checkpointer(tmp_path / "nan", async_save=False)
  with pytest.raises(NonFiniteStateError, match="not saving it .no checkpoint was saved"):
    checkpointer.save(21, state.replace(players=players), 0)
  assert checkpointer.all_steps() == []
  checkpointer.close()


def test_explicit_missing_step_is_a_user_error(finished_run):
  with pytest.raises(CheckpointError, match=r"No checkpoint for step 7 .*available: \[10, 20\]"):
    restore_for_inference(finished_run, 7)


def test_inference_restores_only_the_sampling_player_and_samples_the_same(finished_run):
  """Sampling and evaluation read the generator's parameters, batch
  statistics and EMA; no optimizer state and no discriminator is restored,
  and the samples are those of the whole restored state."""
  _, family, part = restore_for_inference(finished_run)
  assert list(part.players) == ["generator"] and part.players["generator"].opt_state is None
  _, _, whole = restore_training_state(finished_run)
  generator = whole.players["generator"].replace(opt_state=None)
  expected = whole.replace(players={"generator": generator})
  for a, b in zip(jax.tree.leaves(part), jax.tree.leaves(expected), strict=True):
    np.testing.assert_array_equal(a, b)
  np.testing.assert_array_equal(generate(family, part, 64, seed=0),
                                generate(family, whole, 64, seed=0))


def _edit_digests(workdir, edit):
  path = os.path.join(workdir, "checkpoints", "20", "data", "metadata")
  with open(path) as f:
    data = json.load(f)
  edit(data["state_sha256"])
  with open(path, "w") as f:
    json.dump(data, f)


def test_a_partial_restore_checks_the_digests_of_what_it_reads(run_copy):
  def wrong(name):
    return lambda digests: digests.update({name: "0" * 64})

  # What sampling does not read may differ (it is not read); what it reads may not.
  _edit_digests(run_copy, wrong("players/discriminator/params/Dense_0/bias"))
  restore_for_inference(run_copy)
  _edit_digests(run_copy, wrong("players/generator/params/Dense_0/bias"))
  with pytest.raises(CheckpointError, match="damaged: 1 arrays do not match their digests, "
                                            "e.g. 'players/generator/params/Dense_0/bias'"):
    restore_for_inference(run_copy)


# --- Logs -------------------------------------------------------------------

def test_partial_last_metrics_line_is_trimmed(tmp_path):
  path = tmp_path / METRICS_FILE
  path.write_text('{"step": 5, "a": 1.0}\n{"step": 10, "a": 2.0}\n{"step": 15, "a": 3.0}\n'
                  '{"step": 20, "a"')
  assert [r["step"] for r in read_metrics(tmp_path)] == [5, 10, 15]
  writer = MetricWriter(tmp_path, resume_step=10, tensorboard=False)
  writer.write_scalars(10, {"a": 9.0})  # written before checkpoint 10: not again
  writer.write_scalars(15, {"a": 4.0})
  assert path.read_text() == ('{"step": 5, "a": 1.0}\n{"step": 10, "a": 2.0}\n'
                              '{"step": 15, "a": 4.0}\n')


# --- One run per workdir ----------------------------------------------------

def test_a_second_run_on_a_locked_workdir_is_refused(tmp_path):
  with WorkdirLock(tmp_path / "run"):
    with pytest.raises(WorkdirLockedError, match=f"pid {os.getpid()} on"):
      train_and_evaluate(_tiny(), str(tmp_path / "run"))
    assert not (tmp_path / "run" / "checkpoints").exists()
  with WorkdirLock(tmp_path / "run"):  # released on exit
    pass


def test_lock_between_two_processes_and_after_kill(tmp_path):
  workdir = tmp_path / "run"
  holder = subprocess.Popen(
      [sys.executable, "-c", "import sys, time; from gan_jax.workdir_lock import WorkdirLock; "
       f"WorkdirLock({str(workdir)!r}).acquire(); print('locked', flush=True); "
       "time.sleep(120)"], cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True)
  try:
    assert holder.stdout.readline().strip() == "locked"
    second = _cli("gan_jax.main", "--config=configs/ring8.py:tiny", f"--workdir={workdir}")
    _assert_one_line_user_error(second, "is in use by a training run", f"pid {holder.pid}")
  finally:
    holder.send_signal(signal.SIGKILL)
    holder.wait()
  with WorkdirLock(workdir):  # the dead holder's lock is stale, not binding
    pass


# --- Data -------------------------------------------------------------------

@pytest.mark.slow
def test_damaged_prepared_dataset_names_the_command_that_repairs_it(data_dir, ring8_arrays,
                                                                    tmp_path):
  spec = DATASETS.get("ring8")
  copy = str(tmp_path / "tfds")
  shutil.copytree(os.path.join(data_dir, "ring8"), os.path.join(copy, "ring8"))
  version_dir = os.path.join(copy, "ring8", "1.0.0")
  os.remove(os.path.join(version_dir, "dataset_info.json"))
  with pytest.raises(DataDamagedError) as error:
    pipeline_lib.load_split(spec, "train", copy)
  command = prepare_command("ring8", copy, force=True)
  assert str(error.value).endswith(f"Rebuild it with: {command}")
  refused = _cli(*command.split()[2:-1])  # the same command without --force
  _assert_one_line_user_error(refused, "dataset_info.json is missing", command)
  pipeline_lib.prepare(spec, copy, force=True)  # what --force runs
  assert pipeline_lib.find_damage(spec, copy, thorough=True) is None
  np.testing.assert_array_equal(pipeline_lib.load_split(spec, "train", copy)["x"],
                                ring8_arrays["x"])

  record = os.path.join(version_dir, "ring8-test.array_record-00000-of-00001")
  _flip_one_bit(record)  # found by `gan_jax.prepare`'s checksums
  problem = pipeline_lib.find_damage(spec, copy, thorough=True)
  assert problem.endswith("does not match its checksum")
  _truncate(record)  # found by every load
  with pytest.raises(DataDamagedError, match="bytes, not"):
    pipeline_lib.load_split(spec, "train", copy)  # the dataset as a whole is damaged


def test_training_remakes_damaged_synthetic_data(monkeypatch, data_dir, ring8_arrays,
                                                 tmp_path):
  spec = DATASETS.get("ring8")
  copy = str(tmp_path / "tfds")
  shutil.copytree(os.path.join(data_dir, "ring8"), os.path.join(copy, "ring8"))
  calls = []
  monkeypatch.setattr(pipeline_lib, "prepare", lambda *args, **kw: calls.append(kw))
  pipeline_lib.prepare_if_needed(spec, copy)
  assert calls == []
  _truncate(os.path.join(copy, "ring8", "1.0.0", "ring8-train.array_record-00000-of-00001"))
  pipeline_lib.prepare_if_needed(spec, copy)
  assert calls == [{"force": True}]


# --- The CLIs: exit status 2, one line, traceback only with --verbose -------

def _main_flags():
  from absl import flags
  from ml_collections import config_flags

  flag_values = flags.FlagValues()
  config_flags.DEFINE_config_file("config", None, "", flag_values=flag_values,
                                  lock_config=True)
  flags.DEFINE_string("workdir", None, "", flag_values=flag_values)
  return flag_values


def _parse(argv, capsys, flag_values=None, **env):
  flag_values = flag_values or _main_flags()
  with pytest.MonkeyPatch.context() as patch:
    patch.setattr(sys, "argv", ["prog", *argv])  # where the config flag reads overrides
    for key, value in env.items():
      patch.setenv(key, value)
    with pytest.raises(SystemExit) as exit_info:
      cli.parse_flags(["prog", *argv], flag_values)
  return exit_info.value.code, capsys.readouterr().err


@pytest.mark.parametrize("argv, fragment", [
    (["--config=configs/ring8.py:tiny", "--config.lossname=hinge"],
     "no key 'lossname'. Did you mean --config.loss.name?"),
    (["--config=configs/ring8.py:tnyi"], "unknown argument ':tnyi'"),
    (["--config=configs/ring8.py:tiny", "--config.batch_size=abc"], "--config.batch_size=abc"),
    (["--config=configs/nope.py"], "no config file configs/nope.py"),
])
def test_flag_mistakes_exit_2_with_one_line(capsys, argv, fragment):
  status, stderr = _parse(argv, capsys)
  assert status == 2 and stderr.count("\n") == 1 and fragment in stderr, stderr
  status, stderr = _parse(argv, capsys, **{cli.VERBOSE_ENV: "1"})
  assert status == 2 and "Traceback" in stderr and fragment in stderr


def test_the_real_cli_prints_one_line_without_traceback(tmp_path):
  typo = _cli("gan_jax.main", "--config=configs/ring8.py:tiny", f"--workdir={tmp_path}",
              "--config.lossname=hinge")
  _assert_one_line_user_error(typo, "Did you mean --config.loss.name?")
  assert not os.listdir(tmp_path)


def test_sample_checks_its_arguments(finished_run, tmp_path, capsys):
  from gan_jax.sample import write_samples
  from gan_jax.run import resolved_dataset

  config, family, state = restore_for_inference(finished_run)
  spec = resolved_dataset(config)
  for kind, num, steps in (("raw", 0, 10), ("raw", -5, 10), ("interpolation", 4, 0)):
    with pytest.raises(ConfigError, match="Need num >= 1 and steps >= 2"):
      write_samples(family, state, spec, kind=kind, num=num, seed=0, steps=steps,
                    output=str(tmp_path / ("s.npy" if kind == "raw" else "s.png")))
  from absl import flags
  from gan_jax import sample
  for argv, fragment in ((["--num=0"], "--num=0: 0 is not a positive integer"),
                         (["--num=-5"], "--num=-5: -5 is not a positive integer"),
                         (["--kind=interpolation", "--steps=0"], "0 is not integer >= 2")):
    flag_values = flags.FlagValues()
    sample.define_flags(flag_values)
    status, stderr = _parse(["--workdir=w", "--output=o.png", *argv], capsys, flag_values)
    assert status == 2 and stderr.count("\n") == 1 and fragment in stderr, stderr
  result = _cli("gan_jax.sample", f"--workdir={finished_run}", "--kind=raw",
                f"--output={tmp_path / 'r.png'}")
  _assert_one_line_user_error(result, "writes a .npy file; name it")
  assert not os.listdir(tmp_path)
