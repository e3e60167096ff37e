"""End-to-end training: exact resume, preemption, bad input, NaN, CLIs."""

import json
import os
import signal
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import ring8, toy1d
from gan_jax import losses
from gan_jax.checkpoint import Checkpointer
from gan_jax.families import build_family
from gan_jax.metric_writer import read_metrics
from gan_jax.registry import ConfigError
from gan_jax.run import restore_for_inference
from gan_jax.sharding import make_mesh, replicated
from gan_jax.train import NonFiniteLossError, train_and_evaluate

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _tiny(num_steps=20, **overrides):
  c = ring8.get_config("tiny")
  c.num_train_steps = num_steps
  c.n_critic = 2  # two batches per step: the data position is not the step
  for key, value in overrides.items():
    c[key] = value
  return c


def _losses(workdir):
  return [{k: v for k, v in row.items() if k != "steps_per_sec"}
          for row in read_metrics(workdir)]


@pytest.fixture(scope="module")
def straight_run(tmp_path_factory, data_dir):
  workdir = str(tmp_path_factory.mktemp("straight"))
  train_and_evaluate(_tiny(20), workdir)
  return workdir


@pytest.mark.slow
def test_sigterm_saves_and_resumes_exactly(tmp_path, data_dir, assert_same_checkpoints):
  """Stopped by SIGTERM, resumed in a new process: bitwise the run that never
  stopped (state, logged rows and the data position)."""
  workdir = str(tmp_path / "preempted")
  cmd = [sys.executable, "-m", "gan_jax.main", "--config=configs/ring8.py:tiny",
         f"--workdir={workdir}", "--config.num_train_steps=1000000",
         "--config.checkpoint_every_steps=1000000", "--config.eval_every_steps=1000000",
         "--config.log_every_steps=7", "--config.n_critic=2"]
  proc = subprocess.Popen(cmd, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
  metrics_path = os.path.join(workdir, "metrics.jsonl")
  deadline = time.time() + 120
  while not (os.path.exists(metrics_path) and os.path.getsize(metrics_path) > 0):
    assert time.time() < deadline and proc.poll() is None, proc.stdout.read().decode()
    time.sleep(0.2)
  proc.send_signal(signal.SIGTERM)
  output = proc.communicate(timeout=120)[0].decode()
  assert proc.returncode == 0, output
  stopped = Checkpointer(workdir).latest_step()
  assert stopped is not None and stopped >= 7, output

  # Resume for 5 more steps; compare with a run that never stopped.
  final = stopped + 5
  subprocess.run(cmd[:5] + [f"--config.num_train_steps={final}", *cmd[6:]],
                 cwd=REPO_ROOT, check=True, capture_output=True)
  reference = str(tmp_path / "reference")
  config = ring8.get_config("tiny")
  config.num_train_steps = final
  config.checkpoint_every_steps = config.eval_every_steps = 1000000
  config.log_every_steps = 7
  config.n_critic = 2  # two batches per step: the data position is not the step
  train_and_evaluate(config, reference)
  assert_same_checkpoints(reference, workdir)
  assert _losses(workdir) == _losses(reference)
  family = build_family(config, (2,))
  _, position = Checkpointer(workdir).restore(
      jax.eval_shape(lambda: family.create_state(config)), replicated(make_mesh()))
  assert position == final * 2


def test_changed_config_is_refused_unless_allowed(straight_run):
  config = _tiny(30)
  config.optimizer.generator.learning_rate = 5e-4
  config.loss.name = "hinge"
  with pytest.raises(ConfigError) as error:
    train_and_evaluate(config, straight_run)
  message = str(error.value)
  assert "optimizer.generator.learning_rate: 0.001 -> 0.0005" in message
  assert "loss.name: 'non_saturating' -> 'hinge'" in message
  assert "num_train_steps" not in message  # resume-safe
  assert "allow_config_change" in message


@pytest.fixture
def nan_loss():
  @losses.register_loss("test_nan")
  def test_nan(d_real, d_fake, *, batch_mean, real_target):
    del real_target
    nan = batch_mean(d_real) * jnp.nan
    return losses.LossPair(nan + batch_mean(d_fake), batch_mean(d_fake))

  yield
  del losses.ADVERSARIAL_LOSSES._entries["test_nan"]


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path, data_dir, nan_loss):
  workdir = str(tmp_path / "nan")
  train_and_evaluate(_tiny(10), workdir)
  config = _tiny(20, allow_config_change=True)
  config.loss.name = "test_nan"
  with pytest.raises(NonFiniteLossError, match="'loss_d' is nan at step 11"):
    train_and_evaluate(config, workdir)
  assert Checkpointer(workdir).all_steps() == [10]
  _, _, state = restore_for_inference(workdir)
  assert int(state.step) == 10
  assert all(np.all(np.isfinite(x)) for x in jax.tree.leaves(state))


@pytest.mark.parametrize("key, value, valid", [
    ("loss.name", "wgan", "hinge, least_squares, minimax"),
    ("generator.name", "resnet", "affine_noise, dcgan, mlp, sngan_resnet"),
    ("dataset.name", "cifar100", "blobs, celeb_a, cifar10, emoji, fashion_mnist, grid25, mnist, normal1d, ring8"),
    ("optimizer.discriminator.name", "adagrad", "adam, adamw, rmsprop, sgd"),
    ("family", "diffusion", "autoencoder, gan, vae"),
])
def test_unknown_names_list_valid_ones(tmp_path, key, value, valid):
  config = _tiny()
  *parents, field = key.split(".")
  node = config
  for parent in parents:
    node = node[parent]
  node[field] = value
  with pytest.raises(ConfigError, match=f"Valid names: {valid}"):
    train_and_evaluate(config, str(tmp_path))


def test_batch_size_not_divisible_by_devices_is_refused(tmp_path):
  with pytest.raises(ConfigError, match="not divisible by the 4 devices"):
    train_and_evaluate(_tiny(batch_size=30), str(tmp_path))
  assert not os.path.exists(os.path.join(tmp_path, "checkpoints"))


def test_workdir_records_provenance(straight_run):
  with open(os.path.join(straight_run, "config.json")) as f:
    saved = json.load(f)
  assert saved["num_train_steps"] == 20 and saved["n_critic"] == 2
  with open(os.path.join(straight_run, "environment-0.json")) as f:
    env = json.load(f)
  assert env["packages"]["jax"] == jax.__version__
  assert len(env["devices"]) == 4 and "xla_force_host_platform_device_count=4" in env["xla_flags"]
  assert env["cpu"]
  rows = read_metrics(straight_run)
  assert [r["step"] for r in rows if "loss_d" in r] == [5, 10, 15, 20]
  for key in ("d_real", "d_fake", "p_real", "p_fake", "grad_norm_d", "grad_norm_g"):
    assert key in rows[0]
  assert os.path.exists(os.path.join(straight_run, "samples", "step_0000020.png"))
  assert os.listdir(os.path.join(straight_run, "tensorboard"))


@pytest.mark.slow
def test_evaluate_and_sample_clis(straight_run, tmp_path):
  out = tmp_path / "eval.json"
  subprocess.run([sys.executable, "-m", "gan_jax.evaluate", f"--workdir={straight_run}",
                  f"--output={out}"], cwd=REPO_ROOT, check=True, capture_output=True)
  result = json.loads(out.read_text())
  assert result["step"] == 20 and result["num_samples"] == 2500
  assert {"modes", "high_quality_fraction", "reverse_kl"} <= result.keys()

  npy = tmp_path / "samples.npy"
  subprocess.run([sys.executable, "-m", "gan_jax.sample", f"--workdir={straight_run}",
                  "--num=300", f"--output={npy}", "--step=10"], cwd=REPO_ROOT, check=True,
                 capture_output=True)
  samples = np.load(npy)
  assert samples.shape == (300, 2) and samples.dtype == np.float32
  from gan_jax.evaluation.evaluate import generate
  _, family, state = restore_for_inference(straight_run, 10)
  np.testing.assert_allclose(samples, generate(family, state, 300, 0), rtol=1e-6, atol=1e-6)
  # The step-10 and step-20 generators differ.
  _, _, state20 = restore_for_inference(straight_run, 20)
  assert not np.allclose(samples, generate(family, state20, 300, 0))


@pytest.mark.slow
def test_toy_example_matches_the_data(tmp_path, data_dir):
  """The explainers' toy: G(z) = (z + theta1) * theta2 learns N(10, 4).
  Through the real entry point on one device: this 2-parameter game is
  bound by dispatch, 1,100 steps/s there against 300 on the session's four."""
  config = toy1d.get_config()
  workdir = tmp_path / "toy"
  # One evaluation and one checkpoint, at the end: only the final fit is checked.
  result = subprocess.run(
      [sys.executable, "-m", "gan_jax.main", "--config=configs/toy1d.py",
       f"--workdir={workdir}", "--config.eval.num_samples=10000",
       f"--config.eval_every_steps={config.num_train_steps}",
       f"--config.checkpoint_every_steps={config.num_train_steps}"],
      cwd=REPO_ROOT, capture_output=True, text=True,
      env=dict(os.environ, XLA_FLAGS=os.environ["XLA_FLAGS"].replace(
          "device_count=4", "device_count=1")))
  assert result.returncode == 0, result.stderr[-2000:]
  final = [row for row in read_metrics(str(workdir)) if "eval/mean" in row][-1]
  assert final["step"] == config.num_train_steps
  assert abs(final["eval/mean"] - 10.0) < 0.2, final
  assert abs(final["eval/std"] - 2.0) < 0.2, final
  # The parameters themselves: mean = theta1 * theta2, std = |theta2|.
  assert abs(final["eval/param/theta1"] * final["eval/param/theta2"] - 10.0) < 0.2
  assert abs(abs(final["eval/param/theta2"]) - 2.0) < 0.2


def test_options_added_later_do_not_block_resuming_older_runs():
  from gan_jax.provenance import changed_keys

  saved = {"seed": 0, "ema": {"start_step": 0}}  # written before compute_dtype and ema.decay
  assert changed_keys(saved, {"seed": 0, "compute_dtype": "float32",
                              "ema": {"decay": 0.0, "start_step": 0}}) == []
  assert changed_keys(saved, {"seed": 0, "compute_dtype": "bfloat16",
                              "ema": {"decay": 0.999, "start_step": 0}}) == [
                                  "compute_dtype", "ema.decay"]
  assert changed_keys(saved, {"seed": 0, "ema": {"start_step": 0}, "new_knob": 1}) == [
      "new_knob"]  # an unlisted new key still counts as a change


def test_profile_option_writes_a_trace_of_the_window(tmp_path, data_dir):
  config = _tiny(6)
  config.profile.start_step, config.profile.num_steps = 2, 3
  train_and_evaluate(config, str(tmp_path))
  traces = [os.path.join(root, name) for root, _, names in os.walk(tmp_path / "profile")
            for name in names if name.endswith(".xplane.pb")]
  assert len(traces) == 1 and os.path.getsize(traces[0]) > 0


def test_sigint_stops_like_sigterm_and_a_second_one_aborts():
  from gan_jax.multihost import StopSignals

  # Python's own handler to start from (a pytest worker may have another).
  outer = signal.signal(signal.SIGINT, signal.default_int_handler)
  try:
    with StopSignals() as stop_signals:
      assert not stop_signals.should_stop(1)
      os.kill(os.getpid(), signal.SIGINT)
      time.sleep(0.1)  # Python runs the handler between bytecodes
      assert stop_signals.should_stop(2)
      # The next Ctrl-C takes the default action: the process ends at once.
      assert signal.getsignal(signal.SIGINT) == signal.SIG_DFL
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
  finally:
    signal.signal(signal.SIGINT, outer)


def _read_only_launch(directory, command):
  """`command` with `directory` read-only: a private read-only bind mount for
  root (which ignores permissions), else the permissions."""
  if os.geteuid() != 0:
    os.chmod(directory, 0o555)
    return command
  probe = subprocess.run(["unshare", "-m", "true"], capture_output=True)
  if probe.returncode != 0:
    pytest.skip("running as root without the rights to make a read-only mount")
  script = 'mount --bind -o ro "$0" "$0" && exec "$@"'
  return ["unshare", "-m", "sh", "-c", script, str(directory), *command]


def test_a_failed_save_ends_the_run_at_once_with_its_cause(tmp_path, data_dir):
  workdir = tmp_path / "run"
  (workdir / "checkpoints").mkdir(parents=True)
  command = _read_only_launch(
      workdir / "checkpoints",
      [sys.executable, "-m", "gan_jax.main", "--config=configs/ring8.py:tiny",
       f"--workdir={workdir}", "--config.num_train_steps=10"])
  start = time.time()
  result = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=240)
  assert result.returncode == 1, result.stderr[-3000:]
  assert time.time() - start < 120  # it waited about 300 s for Orbax's threads before
  last_line = result.stderr.strip().splitlines()[-1]
  assert "Read-only file system" in last_line or "Permission denied" in last_line, last_line
