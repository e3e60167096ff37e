"""Launching `gan_jax.main`/`gan_jax.evaluate` as 2 local processes of 2 CPU
devices each through `gan_jax.launch`, and comparing such a run with one
process of 4 devices: shared by the multi-process test files."""

import os
import re
import subprocess
import sys
from unittest import mock

import jax
import numpy as np
from absl import flags
from ml_collections import config_flags

from gan_jax.metric_writer import read_metrics
from gan_jax.run import restore_training_state

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NEVER = 10**6
# ring8 runs: no evaluation or checkpoint before the end, a loss row every 5 steps.
RING8_FLAGS = ("--config=configs/ring8.py:tiny", f"--config.eval_every_steps={NEVER}",
               f"--config.checkpoint_every_steps={NEVER}")
# The image family's hardest case: batch norm in D, generator EMA, DiffAugment.
IMAGE_FLAGS = ("--config=configs/dcgan_mnist_classic.py:tiny", "--config.dataset.name=blobs",
               "--config.augment.policy=color,translation,cutout",
               "--config.num_train_steps=10", "--config.eval_every_steps=10",
               "--config.checkpoint_every_steps=10")


def launch_command(*args, module="gan_jax.main"):
  return [sys.executable, "-m", "gan_jax.launch", "--num_processes=2",
          "--devices_per_process=2", f"--module={module}", "--", *args]


def launch(*args, module="gan_jax.main", timeout=600):
  result = subprocess.run(launch_command(*args, module=module), cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=timeout)
  assert result.returncode == 0, last_lines(result.stdout + result.stderr)
  return result.stdout


def last_lines(output, count=25):
  """Each process's last lines, without C++ stack frames: what a failure shows."""
  lines = [line for line in output.splitlines() if not re.match(r"^\[\d\]\s+@", line)]
  return "\n".join(line for prefix in ("[0]", "[1]", "[launch]")
                   for line in [l for l in lines if l.startswith(prefix)][-count:])


def parsed_config(flags_given):
  """The config `gan_jax.main` builds from these flags, through absl's own
  config-file flag (which reads its overrides from sys.argv)."""
  flag_values = flags.FlagValues()
  config_flags.DEFINE_config_file("config", flag_values=flag_values, lock_config=True)
  argv = ["main", *(f for f in flags_given if f.startswith("--config"))]
  with mock.patch.object(sys, "argv", argv):
    flag_values(argv)
  return flag_values.config


def losses(workdir):
  return [{k: v for k, v in row.items() if k != "steps_per_sec"}
          for row in read_metrics(workdir)]


def assert_close_to_single_process(cluster_dir, single_dir, relative_to_motion):
  """Parameters within `relative_to_motion` of how far they moved from their
  initial values (so the check can fail), and logged losses tightly."""
  _, family, a = restore_training_state(cluster_dir)
  config, _, b = restore_training_state(single_dir)
  assert int(a.step) == int(b.step)
  initial = jax.jit(lambda: family.create_state(config))()
  motion = max(float(np.max(np.abs(np.asarray(x) - np.asarray(y))))
               for x, y in zip(jax.tree.leaves(b.players), jax.tree.leaves(initial.players)))
  difference = max(float(np.max(np.abs(np.asarray(x) - np.asarray(y))))
                   for x, y in zip(jax.tree.leaves(a.players), jax.tree.leaves(b.players)))
  assert motion > 1e-3, motion
  assert difference <= relative_to_motion * motion, (difference, motion)
  cluster_rows, single_rows = losses(cluster_dir), losses(single_dir)
  assert [r["step"] for r in cluster_rows] == [r["step"] for r in single_rows]
  for r, s in zip(cluster_rows, single_rows):
    for key in r:
      if key.startswith("loss"):
        np.testing.assert_allclose(r[key], s[key], rtol=1e-4, err_msg=key)
