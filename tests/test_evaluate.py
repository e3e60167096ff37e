"""Evaluation: sampling split over devices gives the samples of one device."""

import jax
import numpy as np
import pytest

from configs import dcgan_mnist
from gan_jax import gan
from gan_jax.evaluation import evaluate
from gan_jax.sharding import make_mesh, replicated


@pytest.mark.slow
def test_sharded_sampling_matches_one_device(monkeypatch):
  monkeypatch.setattr(evaluate, "SAMPLE_BATCH", 8)  # a full batch, then a padded one
  num_samples = 10
  config = dcgan_mnist.get_config("tiny")
  config.generator.base_features = 4
  family = gan.GANFamily.from_config(config, (28, 28, 1))
  state = family.create_state(config)
  samples = {}
  for num_devices in (1, 4):
    mesh = make_mesh(jax.devices()[:num_devices])
    samples[num_devices] = evaluate.generate(family, state, num_samples, seed=3, mesh=mesh)
  assert samples[4].shape == (num_samples, 28, 28, 1)
  np.testing.assert_allclose(samples[4], samples[1], rtol=1e-5, atol=1e-6)
  # A generated batch holds different samples, not copies of one.
  assert np.abs(samples[4][0] - samples[4][1]).max() > 1e-3
  # The output is replicated: every device holds all of a batch.
  mesh = make_mesh(jax.devices()[:4])
  sampler = evaluate.make_sampler(family, mesh)
  out = sampler(jax.device_put(state, replicated(mesh)), np.zeros((8, family.latent_dim),
                                                                  np.float32), None)
  assert out.sharding.is_fully_replicated


def test_inception_metrics_setting_reads_command_line_text():
  """The field's default is the string "auto", so `--config.eval.inception_metrics=False`
  arrives as text: it must turn the metrics off, not be refused."""
  assert evaluate.inception_metrics_enabled("False") is False
  assert evaluate.inception_metrics_enabled("true") is True
  assert evaluate.inception_metrics_enabled(False) is False
  assert evaluate.inception_metrics_enabled("auto") == (jax.default_backend() != "cpu")
  with pytest.raises(evaluate.ConfigError, match="True, False or 'auto'"):
    evaluate.inception_metrics_enabled("yes")
