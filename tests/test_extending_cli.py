"""The README's extending example end to end, as a user outside the repository
runs it: a loss and a regulariser in their own module, trained on ring8
through `--import`, evaluated and sampled with the stock commands (which
import the module again from config.json), then re-run with `--rerun`."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLE = os.path.join(REPO_ROOT, "tests", "fixtures", "plugin_example", "my_gan_parts.py")


def _run(scratch, module, *flags, check=True):
  # PYTHONPATH selects this checkout's gan_jax over any installed one.
  env = dict(os.environ, PYTHONPATH=REPO_ROOT)
  command = [sys.executable, *(["-c"] if module == "-c" else ["-m", module]), *flags]
  result = subprocess.run(command, cwd=scratch, env=env,
                          capture_output=True, text=True)
  if check and result.returncode:
    raise AssertionError(f"{module} {flags} failed:\n{result.stderr[-3000:]}")
  return result


@pytest.fixture(scope="module")
def trained(tmp_path_factory, data_dir):
  scratch = tmp_path_factory.mktemp("scratch")
  shutil.copy(EXAMPLE, scratch)
  _run(scratch, "gan_jax.main", "--import=my_gan_parts",
       f"--config={REPO_ROOT}/configs/ring8.py:tiny", "--workdir=run",
       "--config.loss.name=noisy_least_squares", "--config.regularizers.r2.weight=1")
  return scratch


@pytest.mark.slow
def test_a_plugin_trains_evaluates_and_samples(trained):
  with open(trained / "run" / "config.json") as f:
    saved = json.load(f)
  assert saved["plugins"] == "my_gan_parts"
  assert saved["regularizers"]["r2"] == {"weight": 1, "every": 1, "scale": 0.5}
  with open(trained / "run" / "environment-0.json") as f:
    environment = json.load(f)
  assert len(environment["code"]["git_commit"]) == 40
  assert environment["plugins"]["my_gan_parts"]["sha256"]
  # No --import: both commands import the module config.json names.
  _run(trained, "gan_jax.evaluate", "--workdir=run", "--output=eval.json",
       "--num_samples=100")
  with open(trained / "eval.json") as f:
    assert json.load(f)["step"] == 20
  _run(trained, "gan_jax.sample", "--workdir=run", "--output=samples.npy", "--num=10")
  assert np.load(trained / "samples.npy").shape == (10, 2)


@pytest.mark.slow
def test_rerun_reproduces_the_final_parameters(trained):
  _run(trained, "gan_jax.main", "--rerun=run", "--workdir=again")
  # Compared in a process of its own: restoring imports the plugin.
  compare = ("import jax, numpy as np\n"
             "from gan_jax.run import restore_training_state\n"
             "a, b = (restore_training_state(w)[2] for w in ('run', 'again'))\n"
             "assert int(a.step) == int(b.step) == 20\n"
             "for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):\n"
             "  np.testing.assert_array_equal(np.asarray(x), np.asarray(y))\n")
  _run(trained, "-c", compare)


def test_show_config_lists_every_key_with_its_meaning(trained):
  listing = _run(trained, "gan_jax.main", "--config=run/config.json", "--show_config",
                 "--config.num_train_steps=7").stdout
  lines = {line.split(" = ")[0]: line for line in listing.splitlines()}
  assert lines["num_train_steps"].startswith("num_train_steps = 7 ")
  assert "= 0.5" in lines["regularizers.r2.scale"]
  assert lines["regularizers.r2.scale"].endswith("# option of regularizer 'r2'")
  assert "= 0.1" in lines["loss.noisy_least_squares.noise"]
  assert all("#" in line for line in lines.values())


def test_an_unknown_option_is_one_line(trained):
  result = _run(trained, "gan_jax.main", f"--config={REPO_ROOT}/configs/ring8.py:tiny",
                "--workdir=bad", "--config.generator.activation=gelu", check=False)
  assert result.returncode == 2
  assert result.stderr.strip().count("\n") == 0 and "activation" in result.stderr
