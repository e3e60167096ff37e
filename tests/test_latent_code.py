"""InfoGAN's categorical latent code (gan_jax.gan): the code's prior, that Q
learns to read it back, sampling by code, and the configs it refuses."""

import os

import jax
import numpy as np
import pytest
from jax.sharding import NamedSharding

from configs import dcgan_mnist
from gan_jax import gan
from gan_jax.registry import ConfigError
from gan_jax.sharding import BATCH_SPEC, make_mesh, replicated
from gan_jax.step import make_train_step

IMAGE_SHAPE = (28, 28, 1)
CATEGORIES = 4
BATCH = 32


def _code_config():
  c = dcgan_mnist.get_config("tiny")
  c.latent_code.categories = CATEGORIES
  c.generator.label_embedding_dim = 4
  c.batch_size = BATCH
  for player in (c.optimizer.generator, c.optimizer.discriminator):
    player.schedule = "constant"  # the tiny config decays to 0 within its 20 steps
    player.learning_rate = 1e-3
  return c


def test_codes_are_uniform_and_read_from_the_first_coordinates():
  family = gan.GANFamily.from_config(_code_config(), IMAGE_SHAPE)
  z = jax.random.normal(jax.random.PRNGKey(0), (200_000, family.latent_dim))
  codes = np.asarray(family.latent_codes(z))
  shares = np.bincount(codes, minlength=CATEGORIES) / len(codes)
  # Each share's standard error is sqrt(0.25 * 0.75 / 2e5) ~ 0.001.
  np.testing.assert_allclose(shares, 1 / CATEGORIES, atol=0.005)
  np.testing.assert_array_equal(codes, np.argmax(np.asarray(z)[:, :CATEGORIES], axis=1))


def _final_code_cross_entropy(config, num_steps=100):
  mesh = make_mesh(jax.devices()[:1])
  family = gan.GANFamily.from_config(config, IMAGE_SHAPE)
  state = jax.jit(lambda: family.create_state(config), out_shardings=replicated(mesh))()
  step_fn = make_train_step(family, mesh)
  sharding = NamedSharding(mesh, BATCH_SPEC)
  rng = np.random.default_rng(0)
  history = []
  for _ in range(num_steps):
    batches = {"x": rng.uniform(-1, 1, (1, BATCH, *IMAGE_SHAPE)).astype(np.float32)}
    state, metrics = step_fn(state, jax.device_put(batches, sharding))
    history.append(jax.device_get(metrics))
  return family, state, np.mean([[m["code_ce_d"], m["code_ce_g"]] for m in history[-10:]], 0)


@pytest.fixture(scope="module")
def trained():
  return _final_code_cross_entropy(_code_config())


def test_q_learns_the_code_it_is_trained_on(trained):
  # Chance is log(4) = 1.39 nats, where Q stays if the code term leaves the
  # objectives or G is not given the code (Q then has nothing to read).
  _, _, (ce_d, ce_g) = trained
  assert ce_d < 0.5 and ce_g < 0.5, (ce_d, ce_g)


def test_samples_follow_the_code_of_each_latent(trained):
  family, state, _ = trained
  z = np.asarray(jax.random.normal(jax.random.PRNGKey(1), (8, family.latent_dim)))
  samples = np.asarray(family.sample(state, z, use_ema=False))
  g = state.players["generator"]
  codes = np.argmax(z[:, :CATEGORIES], axis=1)

  def generate(labels):
    return np.asarray(g.apply(g.params, z, labels, train=False)[0])

  np.testing.assert_array_equal(samples, generate(codes))
  # The code matters: the same z with the next code draws something else.
  assert np.abs(samples - generate((codes + 1) % CATEGORIES)).max() > 0.1


@pytest.mark.parametrize("change, message", [
    (lambda c: setattr(c, "num_classes", 10), "unconditional"),
    (lambda c: setattr(c.latent_code, "categories", 1), "2..latent_dim"),
    (lambda c: setattr(c, "pack_size", 2), "pack_size=1"),
    (lambda c: setattr(c.discriminator, "name", "mlp"), "discriminators with one: dcgan"),
])
def test_configs_it_cannot_train_are_refused(change, message):
  config = _code_config()
  change(config)
  with pytest.raises(ConfigError, match=message):
    gan.GANFamily.from_config(config, IMAGE_SHAPE)


def test_with_codes_moves_the_largest_coordinate_into_place():
  family = gan.GANFamily.from_config(_code_config(), IMAGE_SHAPE)
  z = np.asarray(jax.random.normal(jax.random.PRNGKey(2), (64, family.latent_dim)))
  codes = np.arange(64) % CATEGORIES
  moved = np.asarray(family.with_codes(z, codes))
  np.testing.assert_array_equal(np.argmax(moved[:, :CATEGORIES], axis=1), codes)
  # A permutation of the code's coordinates only; the rest of z is untouched.
  np.testing.assert_array_equal(np.sort(moved[:, :CATEGORIES], 1),
                                np.sort(z[:, :CATEGORIES], 1))
  np.testing.assert_array_equal(moved[:, CATEGORIES:], z[:, CATEGORIES:])


def test_codes_picture_has_a_row_per_code(trained, tmp_path):
  from gan_jax.data import dataset_spec
  from gan_jax.sample import write_samples
  family, state, _ = trained
  state = jax.device_get(state)  # trained on one device; sampling uses them all
  output = str(tmp_path / "codes.png")
  samples = write_samples(family, state, dataset_spec(_code_config()), kind="codes",
                          output=output, num=3, seed=0)
  assert samples.shape == (CATEGORIES * 3, *IMAGE_SHAPE) and os.path.exists(output)
  without_code = _code_config()
  without_code.latent_code.categories = 0
  with pytest.raises(ConfigError, match="needs a model with a latent code"):
    write_samples(gan.GANFamily.from_config(without_code, IMAGE_SHAPE), state,
                  dataset_spec(without_code), kind="codes", output=output, num=3, seed=0)
