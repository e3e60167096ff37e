"""The image family (classic DCGAN: batch norm in D, generator EMA,
DiffAugment) on 2 processes of 2 CPU devices, launched as a user would through
`gan_jax.launch`: it trains like 1 process with 4 devices, and its fresh
start is a barrier, not a race (process 0 writes, the other waits)."""

import os

import pytest

from gan_jax.train import train_and_evaluate
from tests.cluster import IMAGE_FLAGS, assert_close_to_single_process, launch, parsed_config

pytestmark = pytest.mark.slow  # process launches that compile the image step

@pytest.fixture(scope="module")
def image_cluster_run(tmp_path_factory, data_dir):
  workdir = str(tmp_path_factory.mktemp("image_cluster") / "run")
  output = launch(*IMAGE_FLAGS, f"--workdir={workdir}")
  return workdir, output


def test_image_gan_on_two_processes_trains_like_one_with_four_devices(
    image_cluster_run, tmp_path):
  cluster, _ = image_cluster_run
  single = str(tmp_path / "single")
  train_and_evaluate(parsed_config(IMAGE_FLAGS), single)
  assert_close_to_single_process(cluster, single, relative_to_motion=1e-3)
  assert sorted(os.listdir(os.path.join(cluster, "samples"))) == sorted(
      os.listdir(os.path.join(single, "samples")))


def test_startup_is_a_barrier_not_a_race(image_cluster_run):
  """Process 0 writes config.json and the start's environment record while
  process 1 waits: the fixture's launch into a fresh workdir started cleanly
  (before the barrier, 2 of 2 such launches failed), each file written once."""
  cluster, output = image_cluster_run
  assert sorted(f for f in os.listdir(cluster) if f.endswith(".json")) == [
      "config.json", "environment-0.json"]
  assert "Traceback" not in output
