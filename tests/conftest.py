"""Test setup: 4 forced CPU devices, a compilation cache kept between runs, one
prepared data dir per session, and the committed real-image samples."""

import os

# Must precede the first `import jax` anywhere in the test session.
# LLVM at optimisation level 1, not XLA's default 2: most tests compile far
# more than they run (a 4-device step test: 48 s of CPU -> 30 s), and level 1
# runs nearly as fast. Tests of the product's own numerics on this CPU (the
# bf16 runs of test_precision.py) start their processes with the default.
os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                           + " --xla_force_host_platform_device_count=4"
                           + " --xla_backend_optimization_level=1").strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")
# NumPy's BLAS on one thread: the tests' matrices are small, and OpenBLAS's
# spinning threads fight XLA's pool (and the other pytest worker) for the 2
# cores: a 2048-d FID took 72 s with its default threads, 13 s with one.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
# XLA's own stride-2 convolutions, not the CPU's phase forms (gan_jax.backend):
# the same function, but the phase forms' longer traces and compiles cost a
# third of the image tests' CPU time, and these tests compile far more than
# they run. test_transposed_conv.py checks the forms agree; the tests of the
# backend's choice (there and in test_config_versions.py) unset this.
os.environ.setdefault("GAN_JAX_KERNEL_FORMS", "xla")

import pytest  # noqa: E402

# A persistent compilation cache, shared with the subprocesses the tests
# launch (a resumed run reuses the straight run's programs) and kept between
# local runs: $GAN_JAX_COMPILATION_CACHE, else one apart from the training
# runs' cache. JAX keys each entry by the program, the compile options and its
# own version, so a changed test compiles afresh. A clean clone's first run
# (CI) starts empty.
os.environ.setdefault("GAN_JAX_COMPILATION_CACHE",
                      os.path.expanduser("~/.cache/gan_jax/test_compilation_cache"))
# Every program, not only those over the runs' 0.5 s: the tests' subprocesses
# compile the same small programs again and again (9 % of test_train's CPU).
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
from gan_jax import compilation_cache  # noqa: E402

compilation_cache.enable()


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory):
  """A TFDS data dir shared by the session; synthetic sets are made on demand."""
  path = str(tmp_path_factory.mktemp("tfds"))
  os.environ["GAN_JAX_DATA_DIR"] = path
  return path


SAMPLES_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")


@pytest.fixture(scope="session")
def real_sample():
  """`load(name)`: the committed real images of tests/data/<name>_sample.npz
  (the first 500 of each original IDX split; see its .json), as uint8
  test_image/train_image (N, 28, 28, 1) and int32 test_label/train_label."""
  import numpy as np

  loaded = {}

  def load(name):
    if name not in loaded:
      with np.load(os.path.join(SAMPLES_DIR, f"{name}_sample.npz")) as stored:
        loaded[name] = dict(stored)
    return loaded[name]

  return load


@pytest.fixture(scope="session")
def ring8_arrays(data_dir):
  from gan_jax.data import DATASETS
  from gan_jax.run import load_training_data

  return load_training_data(DATASETS.get("ring8"), data_dir)


@pytest.fixture
def assert_same_checkpoints():
  """Asserts two workdirs' latest checkpoints hold bitwise-equal states."""
  import jax
  import numpy as np

  from gan_jax.run import restore_training_state

  def check(workdir_a, workdir_b):
    _, _, a = restore_training_state(workdir_a)
    _, _, b = restore_training_state(workdir_b)
    assert int(a.step) == int(b.step)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
      np.testing.assert_array_equal(np.asarray(x), np.asarray(y))

  return check


def pytest_collection_modifyitems(config, items):
  """Files mostly made of `slow` tests first (by their share of slow tests):
  pytest-xdist hands out whole files in this order, so the long ones start
  at once instead of ending the run alone on one worker. Within a file the
  order stays."""
  del config
  slow, total = {}, {}
  for item in items:
    path = item.nodeid.partition("::")[0]
    total[path] = total.get(path, 0) + 1
    slow[path] = slow.get(path, 0) + bool(item.get_closest_marker("slow"))
  items.sort(key=lambda item: -slow[item.nodeid.partition("::")[0]]
             / total[item.nodeid.partition("::")[0]])
