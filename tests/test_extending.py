"""Extending without editing the package: registered components carry their
config, unknown options are refused, and losses and regularisers that ask for
keys get per-example keys drawn for the global batch."""

import jax
import numpy as np
import pytest
from jax.sharding import NamedSharding

from configs import default, ring8, toy1d
from gan_jax import gan, losses, regularizers
from gan_jax.families import build_family
from gan_jax.models import GENERATORS, module_config
from gan_jax.registry import ConfigError
from gan_jax.sharding import BATCH_SPEC, make_mesh, replicated
from gan_jax.step import make_train_step

BATCH = 16


def _noisy_least_squares(d_real, d_fake, *, batch_mean, real_target, keys, noise):
  """Least squares with per-example uniform noise on the real label."""
  targets = real_target - noise * jax.vmap(jax.random.uniform)(keys)
  d_loss = 0.5 * batch_mean((d_real - targets) ** 2) + 0.5 * batch_mean(d_fake ** 2)
  return losses.LossPair(d_loss, 0.5 * batch_mean((d_fake - 1.0) ** 2))


def _uniform_probe(discriminate, real, fake, interpolation, *, batch_mean, keys, scale):
  """A zero-gradient term whose value is the batch mean of the keys' draws."""
  del discriminate, fake, interpolation
  assert keys.shape[0] == real.shape[0]
  return scale * batch_mean(jax.vmap(jax.random.uniform)(keys))


@pytest.fixture
def plugins():
  losses.register_loss("noisy_least_squares_test", label_smoothing=True, with_keys=True,
                       noise=0.1)(_noisy_least_squares)
  regularizers.register_regularizer("uniform_probe_test", with_keys=True,
                                    scale=1.0)(_uniform_probe)
  yield
  del losses.ADVERSARIAL_LOSSES._entries["noisy_least_squares_test"]
  del regularizers.REGULARIZERS._entries["uniform_probe_test"]


def test_registering_is_the_whole_job(plugins):
  c = default.get_config()
  assert c.regularizers.uniform_probe_test.to_dict() == {"weight": 0.0, "every": 1,
                                                         "scale": 1.0}
  assert c.loss.noisy_least_squares_test.to_dict() == {"noise": 0.1}
  c.loss.name = "noisy_least_squares_test"
  c.loss.noisy_least_squares_test.noise = 0.3
  c.regularizers.uniform_probe_test.weight = 1e-3
  family = build_family(c, (2,))
  assert dict(family.loss.options) == {"noise": 0.3}
  assert [t.name for t in family.regularizer_terms] == ["uniform_probe_test"]
  assert dict(family.regularizer_terms[0].options) == {"scale": 1.0}


def test_a_new_model_option_is_config_at_its_default():
  config = module_config(GENERATORS, "mlp", hidden_units=7)
  assert config.to_dict() == {"name": "mlp", "hidden_units": 7, "num_hidden_layers": 3,
                              "batch_norm": False}
  with pytest.raises(ConfigError, match="Valid options: batch_norm, hidden_units"):
    module_config(GENERATORS, "mlp", activation="gelu")


@pytest.mark.parametrize("section, key, value, valid", [
    ("regularizers.r1", "gamma", 1.0, "every, weight"),
    ("loss", "margin", 1.0, "label_smoothing, name"),
    ("discriminator", "activation", "gelu", "hidden_units"),
])
def test_unknown_options_are_refused_with_the_valid_ones(section, key, value, valid):
  c = ring8.get_config()
  node = c
  for part in section.split("."):
    node = node[part]
  with node.unlocked() if hasattr(node, "unlocked") else node:
    node[key] = value
  with pytest.raises(ConfigError) as err:
    build_family(c, (2,))
  assert key in str(err.value) and valid in str(err.value)


def test_switching_a_model_keeps_only_the_options_it_takes():
  c = ring8.get_config()
  c.discriminator.name = "dcgan"  # mlp's options at their defaults: ignored
  assert build_family(c, (28, 28, 1)).discriminator.base_features == 64
  c = toy1d.get_config()
  c.discriminator.name = "dcgan"  # toy1d's hidden_units=64 is a choice: refused
  with pytest.raises(ConfigError, match="hidden_units"):
    build_family(c, (28, 28, 1))


def _keyed_config():
  c = default.get_config()
  c.loss.name = "noisy_least_squares_test"
  c.regularizers.uniform_probe_test.weight = 1e-3
  c.regularizers.gradient_penalty.weight = 1.0  # an unkeyed term beside it
  c.n_critic = 2
  c.pack_size = 2
  c.generator.hidden_units = c.discriminator.hidden_units = 16
  return c


def _run(config, num_devices, steps=2):
  mesh = make_mesh(jax.devices()[:num_devices])
  family = gan.GANFamily.from_config(config, (2,))
  state = jax.jit(lambda: family.create_state(config), out_shardings=replicated(mesh))()
  step_fn = make_train_step(family, mesh)
  history = []
  for t in range(steps):
    x = np.random.default_rng(t).normal(size=(config.n_critic, BATCH, 2)).astype(np.float32)
    state, metrics = step_fn(state, jax.device_put({"x": x}, NamedSharding(mesh, BATCH_SPEC)))
    history.append(jax.device_get(metrics))
  return state, history


def test_keys_are_drawn_for_the_global_batch(plugins):
  config = _keyed_config()
  state1, metrics1 = _run(config, 1)
  state4, metrics4 = _run(config, 4)
  probes = [m["reg_uniform_probe_test"] for m in metrics1]
  # Fresh keys every step; the mean of 8 packed rows' U(0, 1) draws per update.
  assert probes[0] != probes[1] and all(0.1 < p < 0.9 for p in probes)
  for m1, m4 in zip(metrics1, metrics4):
    # The same draws on 1 and 4 devices: they come from the global batch.
    np.testing.assert_allclose(m4["reg_uniform_probe_test"], m1["reg_uniform_probe_test"],
                               rtol=1e-6)
    np.testing.assert_allclose(m4["loss_d"], m1["loss_d"], rtol=1e-5)


def test_keyless_runs_draw_no_keys(plugins):
  family = build_family(ring8.get_config(), (2,))
  noise = jax.eval_shape(lambda k: family.draw_noise(k, BATCH), jax.random.PRNGKey(0))
  assert noise.keys() == {"critic", "generator"}
  assert noise["critic"].keys() == {"z", "interpolation"} and noise["generator"].keys() == {"z"}
  keyed = build_family(_keyed_config(), (2,))
  noise = jax.eval_shape(lambda k: keyed.draw_noise(k, BATCH), jax.random.PRNGKey(0))
  assert noise["critic"]["loss_keys"].shape == (BATCH, 2, 2)
  assert noise["generator"]["loss_keys"].shape == (BATCH, 2)
  assert noise["critic"]["regularizer_keys"].shape == (BATCH, 2, 1, 2)
