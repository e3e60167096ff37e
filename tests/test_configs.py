"""Every config's tiny path builds and traces one full train step (shapes
and options are consistent) without compiling; image configs run on the
synthetic `blobs` images, or on random arrays of their own shape."""

import importlib
import os

import jax
import numpy as np
import pytest

from gan_jax.data import dataset_spec
from gan_jax.families import build_family
from gan_jax.sharding import make_mesh
from gan_jax.step import make_train_step

CONFIG_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                          "configs")
CONFIGS = sorted(name[:-3] for name in os.listdir(CONFIG_DIR)
                 if name.endswith(".py") and name not in ("__init__.py", "default.py"))


@pytest.mark.parametrize("name", CONFIGS)
def test_tiny_config_traces_a_step(name):
  config = importlib.import_module(f"configs.{name}").get_config("tiny")
  assert config.num_train_steps <= 50, "tiny paths must stay test-sized"
  spec = dataset_spec(config)
  family = build_family(config, spec.example_shape)
  mesh = make_mesh()
  state = jax.eval_shape(lambda: family.create_state(config))
  shape = (family.batches_per_step, config.batch_size, *spec.example_shape)
  batches = {"x": jax.ShapeDtypeStruct(shape, np.float32)}
  if spec.num_classes:
    batches["label"] = jax.ShapeDtypeStruct(shape[:2], np.int32)
  new_state, metrics = jax.eval_shape(make_train_step(family, mesh), state, batches)
  assert jax.tree.structure(new_state) == jax.tree.structure(state)
  assert all(m.shape == () for m in jax.tree.leaves(metrics))
