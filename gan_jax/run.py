"""A run's pieces outside the training loop: its dataset, data dir, training
arrays and a restored state for inference. `train`, `evaluate`, `sample` and
the benchmarks all use them, so they live below all of those."""

from __future__ import annotations

import os
from typing import Optional

import jax

from gan_jax import multihost, provenance, seeds, storage
from gan_jax.checkpoint import Checkpointer
from gan_jax.data import dataset_spec, default_data_dir
from gan_jax.data import pipeline as pipeline_lib
from gan_jax.families import build_family
from gan_jax.registry import ConfigError
from gan_jax.sharding import make_mesh, replicated


def data_dir_for(config) -> str:
  return os.fspath(storage.resolve(config.dataset.data_dir or default_data_dir(), "data dir"))


def resolved_dataset(config):
  """The dataset spec the config trains on, checked against the model's needs."""
  spec = dataset_spec(config)
  num_classes = config.get("num_classes", 0)
  if num_classes > spec.num_classes:
    raise ConfigError(
        f"num_classes={num_classes}, but dataset '{spec.name}' has "
        f"{spec.num_classes or 'no'} class labels.")
  return spec


def load_training_data(spec, data_dir: str) -> dict:
  """Reads the training split, making synthetic datasets when missing or damaged."""
  def prepare_and_read():
    if spec.auto_prepare:
      pipeline_lib.prepare_if_needed(spec, data_dir)
    return pipeline_lib.load_split(spec, "train", data_dir)

  # Process 0 alone makes (or repairs) the dataset and its array cache; the
  # others read them once it has finished.
  arrays = multihost.on_first_process(prepare_and_read, f"preparing dataset {spec.name}")
  return arrays if arrays is not None else pipeline_lib.load_split(spec, "train", data_dir)


def restore_for_inference(workdir: str, step: Optional[int] = None):
  """(config, family, state) from a workdir's saved config and a checkpoint.

  The state holds what sampling and evaluation read, and only that: the step,
  the run key and the sampling player without its optimizer state (its
  parameters, collections and EMA); the other players and every optimizer
  state stay on disk."""
  return _restore(workdir, step, whole=False)


def restore_training_state(workdir: str, step: Optional[int] = None):
  """(config, family, state) with the whole state training saved (every
  player, optimizer states included): for inspecting or comparing runs."""
  return _restore(workdir, step, whole=True)


def _restore(workdir: str, step: Optional[int], whole: bool):
  workdir = storage.resolve(workdir, "workdir")
  config = provenance.load_config(workdir)
  spec = resolved_dataset(config)
  family = build_family(config, spec.example_shape)
  mesh = make_mesh()
  # Shapes only: tracing the initialisation allocates no array.
  abstract = jax.eval_shape(lambda: seeds.create_state(family, config))
  checkpointer = Checkpointer(workdir, async_save=False)
  try:
    if whole:
      state, _ = checkpointer.restore(abstract, replicated(mesh), step)
    else:
      sampler = abstract.players[family.sampling_player].replace(opt_state=None)
      needed = abstract.replace(players={family.sampling_player: sampler})
      state = checkpointer.restore_part(needed, replicated(mesh), step)
  finally:
    checkpointer.close()
  return config, family, state
