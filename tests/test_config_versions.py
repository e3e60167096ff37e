"""Older workdirs keep working: `config.json` files as earlier versions of the
code wrote them (tests/fixtures/config_versions/<config>@<commit>.json, made
by that commit's configs/<config>.py) resume under today's config, and are
evaluated and sampled.

dcgan_mnist@6415733 and vae_mnist@6415733 hash to the `config_sha256` that
experiments/results/gan_vs_vae.json records, dcgan_stacked_mnist@dacd903 and
@d993f30 to ones in stacked_mnist.json; ring8 and grid25@1526adf are the
configs of mixtures.json.
"""

import glob
import importlib
import json
import os
import shutil

import jax
import numpy as np
import pytest

from configs import dcgan_mnist, ring8
from gan_jax import backend, config_schema, provenance
from gan_jax.evaluation.evaluate import evaluate_workdir
from gan_jax.families import build_family
from gan_jax.sample import write_samples
from gan_jax.run import resolved_dataset, restore_for_inference
from gan_jax.train import train_and_evaluate

FIXTURES = sorted(glob.glob(os.path.join(os.path.dirname(__file__), "fixtures",
                                         "config_versions", "*.json")))
# Research values the configs changed since (the fixture is another recipe).
CHANGED_SINCE = {
    "dcgan_stacked_mnist@dacd903": [
        "discriminator.base_features", "optimizer.discriminator.decay_steps",
        "optimizer.discriminator.learning_rate", "optimizer.discriminator.schedule",
        "optimizer.generator.decay_steps", "optimizer.generator.learning_rate",
        "optimizer.generator.schedule"],
}


# Configs whose recipe moved to another file: issue #24 gave dcgan_mnist a new
# recipe and kept the one these fixtures ran as dcgan_mnist_classic.
MOVED_TO = {"dcgan_mnist": "dcgan_mnist_classic"}


def _name(path):
  return os.path.splitext(os.path.basename(path))[0]


def _saved(path):
  with open(path) as f:
    return json.load(f)


@pytest.mark.parametrize("path", FIXTURES, ids=_name)
def test_todays_config_resumes_older_workdirs(path):
  name = _name(path)
  config_name = name.split("@")[0]
  module = importlib.import_module("configs." + MOVED_TO.get(config_name, config_name))
  current = provenance.config_to_dict(module.get_config())
  assert provenance.changed_keys(_saved(path), current) == CHANGED_SINCE.get(name, [])


@pytest.mark.parametrize("path", FIXTURES, ids=_name)
def test_older_configs_build_their_models(path, tmp_path):
  shutil.copy(path, tmp_path / provenance.CONFIG_FILE)
  config = provenance.load_config(str(tmp_path))
  family = build_family(config, resolved_dataset(config).example_shape)
  state = jax.eval_shape(lambda: family.create_state(config))
  assert family.sampling_player in state.players


def test_every_key_of_todays_default_has_a_meaning_when_absent():
  """A key added to the default config needs an ABSENT_MEANS entry (or must
  come from a registry, or be resume-safe), or the oldest workdirs stop
  resuming."""
  oldest = _saved(os.path.join(os.path.dirname(FIXTURES[0]), "ring8@1526adf.json"))
  known = provenance.flatten(config_schema.complete(oldest))
  current = provenance.flatten(provenance.config_to_dict(ring8.get_config()))
  unexplained = [k for k in set(current) - set(known) if k not in provenance.RESUME_SAFE_KEYS
                 and not k.startswith(provenance.RESUME_SAFE_PREFIXES)]
  assert unexplained == []


@pytest.mark.slow
def test_an_oldest_workdir_resumes_evaluates_and_samples(tmp_path, data_dir):
  """ring8 as the first tuned version wrote it: resumed by today's config,
  then evaluated and sampled from its old config.json."""
  old = os.path.join(os.path.dirname(FIXTURES[0]), "ring8@1526adf.json")
  workdir = str(tmp_path / "run")
  config = ring8.get_config()
  # Only keys that may change on resume, so that the old config.json binds.
  config.num_train_steps, config.checkpoint_every_steps = 2, 2
  config.log_every_steps = config.eval_every_steps = 2
  config.eval.num_samples = 64
  for player in config.optimizer.values():
    player.decay_steps = 20_000  # the old run's explicit length, not this run's
  train_and_evaluate(config, workdir)
  shutil.copy(old, os.path.join(workdir, provenance.CONFIG_FILE))
  config.num_train_steps = config.eval_every_steps = 4
  assert train_and_evaluate(config, workdir)["step"] == 4
  shutil.copy(old, os.path.join(workdir, provenance.CONFIG_FILE))
  results = evaluate_workdir(workdir, num_samples=64)
  assert results["step"] == 4 and "modes" in results
  saved, family, state = restore_for_inference(workdir)
  samples = write_samples(family, state, resolved_dataset(saved), kind="raw",
                          output=str(tmp_path / "samples.npy"), num=8, seed=0)
  assert samples.shape == (8, 2) and np.isfinite(samples).all()


def test_a_workdir_that_recorded_backend_choices_resumes_evaluates_and_samples(
    tmp_path, data_dir, monkeypatch):
  """A config.json from before gan_jax.backend (cpu_library_fusions and the
  DCGAN's kernel forms among the research keys, at values other than today's
  CPU choice): read without them, resumed by today's config, evaluated and
  sampled; the environment record names the choice it resumed with. With
  the backend's own choice (the suite forces XLA's forms), so the phase forms
  train, resume, evaluate and sample here."""
  monkeypatch.delenv(backend.KERNEL_FORMS_ENV)
  workdir = str(tmp_path / "run")
  config = dcgan_mnist.get_config("tiny")
  config.dataset.name = "blobs"
  config.num_train_steps = config.checkpoint_every_steps = 2
  config.log_every_steps = config.eval_every_steps = 2
  train_and_evaluate(config, workdir)
  path = os.path.join(workdir, provenance.CONFIG_FILE)
  recorded = _saved(path)
  recorded["cpu_library_fusions"] = "xla_default"
  recorded["generator"]["conv_transpose"] = "xla"
  recorded["discriminator"]["conv"] = "phase"

  def record_old_keys():
    with open(path, "w") as f:
      json.dump(recorded, f)

  record_old_keys()
  saved = provenance.load_config(workdir)
  assert "cpu_library_fusions" not in saved and "conv_transpose" not in saved.generator
  assert provenance.changed_keys(recorded, provenance.config_to_dict(config)) == []
  config.num_train_steps = config.eval_every_steps = 4
  assert train_and_evaluate(config, workdir)["step"] == 4
  with open(os.path.join(workdir, "environment-2.json")) as f:
    assert json.load(f)["backend_choices"]["kernel_forms"] == {
        "conv": "phase", "conv_transpose": "phase"}
  record_old_keys()
  assert evaluate_workdir(workdir, num_samples=64, inception=False)["step"] == 4
  saved, family, state = restore_for_inference(workdir)
  samples = write_samples(family, state, resolved_dataset(saved), kind="raw",
                          output=str(tmp_path / "samples.npy"), num=8, seed=0)
  assert samples.shape == (8, 28, 28, 1) and np.isfinite(samples).all()


def test_extending_a_run_whose_schedule_follows_it_is_a_change():
  def following(num_train_steps):
    config = ring8.get_config()
    config.num_train_steps = num_train_steps
    for player in config.optimizer.values():
      player.decay_steps = 0  # lasts the run
    return provenance.config_to_dict(config)

  saved = following(1000)
  assert provenance.changed_keys(saved, following(2000)) == [
      "optimizer.discriminator.decay_steps", "optimizer.generator.decay_steps"]
  # The same schedule written out: extend freely.
  longer = ring8.get_config()
  longer.num_train_steps = 2000
  for player in longer.optimizer.values():
    player.decay_steps = 1000
  assert provenance.changed_keys(saved, provenance.config_to_dict(longer)) == []
