"""The autoencoder family: closed forms, NumPy references, and the shared step.

References are written with NumPy and SciPy and never call the library's
helpers; the models in the numeric tests are linear (no hidden layers), so
their forward pass is a matrix product that NumPy can redo.
"""

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import NamedSharding
from ml_collections import ConfigDict
from scipy import special, stats

from configs import default
from gan_jax import autoencoder as ae
from gan_jax.families import build_family
from gan_jax.registry import ConfigError
from gan_jax.sharding import BATCH_SPEC, make_mesh, replicated
from gan_jax.step import make_train_step

IMAGE = (4, 4, 1)
LEARNING_RATE = 3e-2


def _config(family="vae", likelihood="bernoulli", **settings):
  # Linear encoders and decoders: NumPy can redo them, and every test's
  # parameters have the same shapes, so XLA compiles their initialisers once.
  c = ConfigDict(dict(
      seed=0, family=family, latent_dim=2,
      encoder=dict(name="mlp", num_hidden_layers=0),
      decoder=dict(name="mlp", num_hidden_layers=0),
      autoencoder=dict(likelihood=likelihood, beta=1.0, gaussian_variance=1.0,
                       learn_variance=False, iwae_samples=100),
      optimizer=dict(autoencoder=default.optimizer(LEARNING_RATE, b1=0.9))))
  c.autoencoder.update(settings)
  return c


def _binary_images(rng, n):
  """Two 4x4 prototypes (a bar and its complement) with 10% of pixels flipped."""
  bar = np.zeros(IMAGE, np.float32)
  bar[:, :2] = 1.0
  prototypes = np.stack([bar, 1.0 - bar])
  x = prototypes[rng.integers(0, 2, n)]
  flips = rng.random(x.shape) < 0.1
  return np.where(flips, 1.0 - x, x).astype(np.float32)


def _linear_vae(params, x, eps):
  """Posterior moments, sample and decoder output of a linear VAE, in NumPy."""
  p = jax.tree.map(lambda a: np.asarray(a, np.float64), params)
  flat = np.reshape(x, (x.shape[0], -1)).astype(np.float64)
  heads = p["encoder"]["latent"]
  mean = flat @ heads["mean"]["kernel"] + heads["mean"]["bias"]
  log_variance = flat @ heads["log_variance"]["kernel"] + heads["log_variance"]["bias"]
  z = mean + np.exp(log_variance / 2) * eps
  dense = p["decoder"]["Dense_0"]
  output = z @ dense["kernel"] + dense["bias"]  # (..., batch, pixels)
  return mean, log_variance, z, output


def _reference_nll(likelihood, flat_x, output, log_variance):
  if likelihood == "bernoulli":
    return -stats.bernoulli.logpmf(flat_x, special.expit(output)).sum(-1)
  return -stats.norm.logpdf(flat_x, output, np.exp(log_variance / 2)).sum(-1)


def test_kl_matches_closed_form_and_monte_carlo():
  rng = np.random.default_rng(0)
  mean = rng.normal(size=(3, 4))
  log_variance = rng.normal(scale=0.5, size=(3, 4))
  got = np.asarray(ae.gaussian_kl_to_standard_normal(jnp.asarray(mean, jnp.float32),
                                                     jnp.asarray(log_variance, jnp.float32)))
  # KL of two diagonal Gaussians, term by term: log(s2/s1) + (s1^2 + m1^2) / (2 s2^2) - 1/2.
  std = np.exp(log_variance / 2)
  closed = np.sum(-np.log(std) + (std ** 2 + mean ** 2) / 2 - 0.5, axis=1)
  np.testing.assert_allclose(got, closed, rtol=1e-5, atol=1e-6)
  # E_q[log q(z) - log p(z)] from 200k draws; standard error ~0.005 nats here.
  z = mean + std * rng.normal(size=(200_000, *mean.shape))
  log_ratio = (stats.norm.logpdf(z, mean, std) - stats.norm.logpdf(z)).sum(-1)
  np.testing.assert_allclose(got, log_ratio.mean(0), atol=0.03)


def test_likelihoods_match_scipy():
  rng = np.random.default_rng(1)
  logits = rng.normal(scale=3.0, size=(5, 4, 4, 1))
  binary = (rng.random(logits.shape) < 0.5).astype(np.float64)
  bernoulli = ae.LIKELIHOODS.get("bernoulli")
  got = bernoulli.negative_log_likelihood(jnp.asarray(binary, jnp.float32),
                                          jnp.asarray(logits, jnp.float32), 0.0)
  expected = -stats.bernoulli.logpmf(binary, special.expit(logits)).sum(axis=(1, 2, 3))
  np.testing.assert_allclose(got, expected, rtol=1e-5)
  np.testing.assert_allclose(bernoulli.mean(jnp.asarray(logits)), special.expit(logits),
                             rtol=1e-5)

  x = rng.uniform(-1, 1, size=logits.shape)
  means = rng.normal(size=logits.shape)
  gaussian = ae.LIKELIHOODS.get("gaussian")
  for log_variance in (0.0, -2.3):
    got = gaussian.negative_log_likelihood(jnp.asarray(x, jnp.float32),
                                           jnp.asarray(means, jnp.float32), log_variance)
    expected = -stats.norm.logpdf(x, means, np.exp(log_variance / 2)).sum(axis=(1, 2, 3))
    np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_reparameterised_gradient_matches_analytic():
  """f(z) = z^2 with z ~ N(mu, exp(s)): E f = mu^2 + exp(s), so
  dE/dmu = 2 mu and dE/ds = exp(s)."""
  mean, log_variance = jnp.array([0.7, -1.2]), jnp.array([-0.5, 0.4])
  eps = jnp.asarray(np.random.default_rng(7).normal(size=(200_000, 2)), jnp.float32)

  def expected_f(mean, log_variance):
    return jnp.mean(jnp.square(ae.reparameterize(mean, log_variance, eps)), axis=0).sum()

  d_mean, d_log_variance = jax.grad(expected_f, argnums=(0, 1))(mean, log_variance)
  # Standard errors are ~0.005 for these moments.
  np.testing.assert_allclose(d_mean, 2 * mean, atol=0.03)
  np.testing.assert_allclose(d_log_variance, jnp.exp(log_variance), atol=0.03)


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
def test_elbo_and_iwae_of_a_linear_vae_match_numpy(likelihood):
  config = _config(likelihood=likelihood, learn_variance=likelihood == "gaussian",
                   gaussian_variance=0.5)
  family = build_family(config, IMAGE)
  state = _initial_state(family)
  params = state.players[ae.AUTOENCODER].params
  rng = np.random.default_rng(2)
  x = (_binary_images(rng, 6) if likelihood == "bernoulli"
       else rng.uniform(-1, 1, (6, *IMAGE)).astype(np.float32))
  flat_x = x.reshape(6, -1).astype(np.float64)
  obs_log_variance = np.log(0.5)

  # The training objective's terms, at one sample.
  eps = rng.normal(size=(6, 2))
  terms = family.per_example_terms(params, jnp.asarray(x), jnp.asarray(eps, jnp.float32))
  mean, log_variance, _, output = _linear_vae(params, x, eps)
  kl = 0.5 * np.sum(mean ** 2 + np.exp(log_variance) - 1 - log_variance, axis=1)
  np.testing.assert_allclose(terms["kl"], kl, rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(terms["reconstruction"],
                             _reference_nll(likelihood, flat_x, output, obs_log_variance),
                             rtol=1e-4)

  # The evaluation bounds, from the same eps draws as evaluate_batch.
  key = jax.random.PRNGKey(5)
  sums = jax.jit(family.evaluate_batch)(state, jnp.asarray(x), key)
  eps_k = np.asarray(jax.random.normal(key, (family.iwae_samples, 6, 2)), np.float64)
  _, _, z, output = _linear_vae(params, x, eps_k)
  nll = _reference_nll(likelihood, flat_x, output, obs_log_variance)  # (k, batch)
  log_q = stats.norm.logpdf(z, mean, np.exp(log_variance / 2)).sum(-1)
  log_weights = -nll + stats.norm.logpdf(z).sum(-1) - log_q
  iwae = -(special.logsumexp(log_weights, axis=0) - np.log(family.iwae_samples))
  reconstruction = nll.mean(0)
  np.testing.assert_allclose(sums["iwae_nll"], iwae.sum(), rtol=1e-4)
  np.testing.assert_allclose(sums["reconstruction"], reconstruction.sum(), rtol=1e-4)
  np.testing.assert_allclose(sums["kl"], kl.sum(), rtol=1e-4)
  np.testing.assert_allclose(sums["negative_elbo"], (reconstruction + kl).sum(), rtol=1e-4)
  # Reconstructions decode the posterior mean (eps = 0).
  output_at_mean = _linear_vae(params, x, np.zeros((6, 2)))[3]
  if likelihood == "bernoulli":
    output_at_mean = special.expit(output_at_mean)
  np.testing.assert_allclose(sums["squared_error"], np.sum((flat_x - output_at_mean) ** 2),
                             rtol=1e-4)
  assert sums["num_examples"] == 6
  # Importance weighting tightens the bound (here by several nats).
  assert sums["iwae_nll"] < sums["negative_elbo"] - 1.0


def test_iwae_with_one_sample_is_the_elbo_in_expectation():
  config = _config()
  family = dataclasses.replace(build_family(config, IMAGE), iwae_samples=1)
  state = _initial_state(family)
  # One image repeated: the batch mean is a Monte-Carlo average over eps.
  x = jnp.asarray(np.repeat(_binary_images(np.random.default_rng(3), 1), 4000, axis=0))
  sums = jax.jit(family.evaluate_batch)(state, x, jax.random.PRNGKey(0))
  # They differ only by (log q - log p)(z) - KL, mean 0 and std ~1 per draw.
  np.testing.assert_allclose(sums["iwae_nll"] / 4000, sums["negative_elbo"] / 4000,
                             atol=0.1)


@functools.cache
def _initial_state(family):
  """On the host, eagerly: XLA:CPU compiles one initialiser per shape, once.
  Every test config has the same seed and optimizer, so the family is the key."""
  return jax.device_get(family.create_state(_config()))


@functools.cache
def _step(family, num_devices):
  mesh = make_mesh(jax.devices()[:num_devices])
  return mesh, make_train_step(family, mesh)


def _run(family, num_devices, batches):
  mesh, step = _step(family, num_devices)
  state = jax.device_put(_initial_state(family), replicated(mesh))
  history = []
  for x in batches:
    state, metrics = step(state, jax.device_put({"x": x[None]},
                                                NamedSharding(mesh, BATCH_SPEC)))
    history.append(metrics)
  return state, jax.device_get(history)


def test_four_devices_match_one_device():
  family = build_family(_config(), IMAGE)
  rng = np.random.default_rng(4)
  batches = [_binary_images(rng, 16) for _ in range(3)]
  state4, metrics4 = _run(family, 4, batches)
  state1, metrics1 = _run(family, 1, batches)
  assert set(metrics1[0]) == {"loss", "reconstruction", "kl", "negative_elbo", "grad_norm"}
  for m4, m1 in zip(metrics4, metrics1):
    for key in m1:
      np.testing.assert_allclose(m4[key], m1[key], rtol=2e-5, atol=1e-6, err_msg=key)
  for a, b in zip(jax.tree.leaves(jax.device_get(state4.players)),
                  jax.tree.leaves(jax.device_get(state1.players))):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=0.05 * LEARNING_RATE)
  for leaf in jax.tree.leaves(state4):
    assert leaf.sharding.is_fully_replicated and len(leaf.sharding.device_set) == 4


@pytest.mark.parametrize("family", ["autoencoder", "vae"])
def test_loss_decreases_on_binary_data(family):
  rng = np.random.default_rng(5)
  batches = [_binary_images(rng, 32) for _ in range(50)]
  _, metrics = _run(build_family(_config(family), IMAGE), 4, batches)
  losses = np.array([m["loss"] for m in metrics])
  # From ~16 log 2 = 11.1 nats (coin flips) down; knowing only which prototype
  # an image is leaves 16 H(0.1) = 5.2 nats.
  assert losses[-5:].mean() < 0.7 * losses[:5].mean(), losses
  if family == "autoencoder":
    assert set(metrics[0]) == {"loss", "reconstruction", "grad_norm"}


def test_plain_autoencoder_is_deterministic():
  config = _config("autoencoder")
  family = build_family(config, IMAGE)
  state = _initial_state(family)
  x = jnp.asarray(_binary_images(np.random.default_rng(6), 3))
  assert family.draw_noise(jax.random.PRNGKey(0), 3) == {}
  code = family.encode(state, x)
  assert code.shape == (3, 2)
  np.testing.assert_allclose(family.reconstruct(state, x), family.decode(state, code))
  sums = family.evaluate_batch(state, x, jax.random.PRNGKey(0))
  assert set(sums) == {"num_examples", "squared_error", "reconstruction"}


def test_conv_models_map_mnist_shapes():
  config = _config()
  config.encoder = dict(name="conv", features=[2, 4], hidden_units=0)
  config.decoder = dict(name="conv", features=[2, 4], hidden_units=8)
  family = build_family(config, (28, 28, 1))
  hash(family)  # lists from the config became tuples
  # Shapes only: tracing checks them without compiling the convolutions.
  state = jax.eval_shape(lambda: family.create_state(config))
  params = state.players[ae.AUTOENCODER].params
  assert params["encoder"]["Conv_1"]["kernel"].shape == (3, 3, 2, 4)
  assert params["decoder"]["Dense_1"]["kernel"].shape == (8, 7 * 7 * 4)
  samples = jax.eval_shape(family.sample, state, jnp.ones((3, 2)))
  assert samples.shape == (3, 28, 28, 1)
  codes = jax.eval_shape(family.encode, state, jnp.zeros((5, 28, 28, 1)))
  assert codes.shape == (5, 2)
  with pytest.raises(ConfigError, match="does not divide the image size 30x30"):
    jax.eval_shape(lambda: build_family(config, (30, 30, 1)).create_state(config))


@pytest.mark.parametrize("section, name, message", [
    ("encoder", "resnet", "Unknown encoder 'resnet'. Valid names: conv, mlp."),
    ("decoder", "resnet", "Unknown decoder 'resnet'. Valid names: conv, mlp."),
    ("autoencoder", "poisson", "Unknown likelihood 'poisson'. Valid names: bernoulli, gaussian."),
])
def test_unknown_names_list_the_valid_ones(section, name, message):
  config = _config()
  if section == "autoencoder":
    config.autoencoder.likelihood = name
  else:
    config[section].name = name
  with pytest.raises(ConfigError, match=message):
    build_family(config, IMAGE)


def test_learned_variance_needs_a_gaussian():
  with pytest.raises(ConfigError, match="needs the gaussian likelihood"):
    build_family(_config(learn_variance=True), IMAGE)
