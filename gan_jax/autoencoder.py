"""The autoencoder model family: a plain autoencoder and a VAE.

One player, "autoencoder", holds the encoder and the decoder. One step is one
optimizer update of

* plain autoencoder: the reconstruction loss -log p(x | code), where the code
  is a deterministic function of x;
* VAE (Kingma & Welling 2014): the negative ELBO with a beta weight on the KL
  (Higgins et al. 2017), E_q[-log p(x | z)] + beta * KL(q(z | x) || N(0, I)),
  with q = N(mean, exp(log_variance)) from the encoder, one reparameterised
  sample z = mean + exp(log_variance / 2) * eps per example, and the KL in
  closed form.

Losses are in nats per example (summed over the data's values) and averaged
over the global batch with `sharding.batch_mean`, which also averages the gradients
across replicas (see `gan_jax.step`). The eps draws are made for the global
batch in `draw_noise`, so results do not depend on the device count.

Likelihoods: "bernoulli" for binarised data in {0, 1} (the decoder outputs
logits) and "gaussian" for continuous data (the decoder outputs means; one
scalar variance, fixed or learned).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable, Optional

import jax
import jax.numpy as jnp
import optax

from gan_jax import precision
from gan_jax.models import build_module, module_options
from gan_jax.models.autoencoder import (DECODERS, ENCODERS, OBSERVATION_LOG_VARIANCE,
                                        AutoencoderModel)
from gan_jax.optimizers import make_optimizer
from gan_jax.registry import ConfigError, Registry
from gan_jax.sharding import batch_mean
from gan_jax.state import Player, TrainState

AUTOENCODER = "autoencoder"
# Importance samples decoded at once by `evaluate_batch`: memory is
# IMPORTANCE_CHUNK * batch decoder passes, whatever the number of samples.
IMPORTANCE_CHUNK = 10
_LOG_2PI = math.log(2 * math.pi)


def sum_per_example(x: jax.Array) -> jax.Array:
  return jnp.sum(jnp.reshape(x, (x.shape[0], -1)), axis=1)


def gaussian_log_density(x, mean, log_variance) -> jax.Array:
  """log N(x; mean, exp(log_variance)) per example, summed over the values."""
  return -0.5 * sum_per_example(
      _LOG_2PI + log_variance + jnp.square(x - mean) * jnp.exp(-log_variance))


def gaussian_kl_to_standard_normal(mean, log_variance) -> jax.Array:
  """KL(N(mean, diag exp(log_variance)) || N(0, I)) per example, in closed form
  (Kingma & Welling 2014, appendix B)."""
  return 0.5 * sum_per_example(
      jnp.square(mean) + jnp.exp(log_variance) - 1.0 - log_variance)


def reparameterize(mean, log_variance, eps) -> jax.Array:
  return mean + jnp.exp(0.5 * log_variance) * eps


@dataclasses.dataclass(frozen=True)
class Likelihood:
  """p(x | z) given the decoder's raw output.

  `negative_log_likelihood(x, output, log_variance)` is in nats per example;
  `mean(output)` is E[x | z]. `log_variance` is the Gaussian's (ignored by
  the Bernoulli).
  """
  name: str
  negative_log_likelihood: Callable
  mean: Callable


def _bernoulli_nll(x, logits, log_variance):
  del log_variance
  return sum_per_example(optax.sigmoid_binary_cross_entropy(logits, x))


def _gaussian_nll(x, means, log_variance):
  return -gaussian_log_density(x, means, log_variance)


LIKELIHOODS: Registry[Likelihood] = Registry("likelihood")
LIKELIHOODS.register("bernoulli")(Likelihood("bernoulli", _bernoulli_nll, jax.nn.sigmoid))
LIKELIHOODS.register("gaussian")(Likelihood("gaussian", _gaussian_nll, lambda means: means))


@dataclasses.dataclass(frozen=True)
class AutoencoderFamily:
  """Static description of an autoencoder or VAE run; hashable, so it can
  close over jit."""

  model: AutoencoderModel
  latent_dim: int
  data_shape: tuple[int, ...]
  variational: bool
  likelihood: Likelihood
  beta: float = 1.0  # VAE only
  log_variance: float = 0.0  # the Gaussian's; the initial value when learned
  learn_variance: bool = False
  iwae_samples: int = 100  # importance samples in `evaluate_batch` (VAE only)

  sampling_player = AUTOENCODER
  evaluates_test_set = True
  batches_per_step = 1
  pack_size = 1
  num_classes = 0

  @classmethod
  def from_config(cls, config, data_shape: tuple[int, ...]) -> "AutoencoderFamily":
    if config.family not in ("autoencoder", "vae"):
      raise ConfigError(f"AutoencoderFamily builds family 'autoencoder' or 'vae', "
                        f"not '{config.family}'.")
    variational = config.family == "vae"
    if config.latent_dim < 1:
      raise ConfigError(f"latent_dim must be >= 1, got {config.latent_dim}.")
    settings = config.autoencoder
    likelihood = LIKELIHOODS.get(settings.likelihood)
    if settings.beta < 0:
      raise ConfigError(f"autoencoder.beta must be >= 0, got {settings.beta}.")
    if settings.gaussian_variance <= 0:
      raise ConfigError(f"autoencoder.gaussian_variance must be positive, got "
                        f"{settings.gaussian_variance}.")
    if settings.iwae_samples < 1:
      raise ConfigError(f"autoencoder.iwae_samples must be >= 1, got "
                        f"{settings.iwae_samples}.")
    learn_variance = bool(settings.learn_variance)
    if learn_variance and likelihood.name != "gaussian":
      raise ConfigError(f"autoencoder.learn_variance needs the gaussian likelihood; "
                        f"'{likelihood.name}' has no variance.")
    log_variance = math.log(settings.gaussian_variance)
    dtype = precision.compute_dtype(config)
    encoder = build_module(ENCODERS, config.encoder.name, module_options(config.encoder),
                           latent_dim=config.latent_dim, variational=variational,
                           compute_dtype=dtype)
    decoder = build_module(DECODERS, config.decoder.name, module_options(config.decoder),
                           output_shape=tuple(data_shape), compute_dtype=dtype)
    model = AutoencoderModel(encoder, decoder,
                             initial_log_variance=log_variance if learn_variance else None)
    return cls(model=model, latent_dim=config.latent_dim, data_shape=tuple(data_shape),
               variational=variational, likelihood=likelihood, beta=float(settings.beta),
               log_variance=log_variance, learn_variance=learn_variance,
               iwae_samples=int(settings.iwae_samples))

  def create_state(self, config) -> TrainState:
    key = jax.random.fold_in(jax.random.PRNGKey(config.seed), 0xAE)
    variables = self.model.init(key, jnp.zeros((1, *self.data_shape), jnp.float32))
    player = Player.create(self.model, make_optimizer(config.optimizer.autoencoder,
                                                     config.get("num_train_steps")),
                           variables)
    return TrainState.create(config.seed, {AUTOENCODER: player})

  def draw_noise(self, key, global_batch_size: int) -> dict:
    if not self.variational:
      return {}
    return {"eps": jax.random.normal(key, (global_batch_size, self.latent_dim))}

  # Pure pieces, on a parameter tree.

  def _run(self, params, inputs, method):
    return self.model.apply({"params": params}, inputs, method=method)

  def _encode(self, params, x):
    return self._run(params, x, AutoencoderModel.encode)

  def _decode(self, params, z):
    return self._run(params, z, AutoencoderModel.decode)

  def _observation_log_variance(self, params):
    if self.learn_variance:
      return params[OBSERVATION_LOG_VARIANCE]
    return jnp.float32(self.log_variance)

  def _output_nll(self, params, x, output):
    return self.likelihood.negative_log_likelihood(
        x, output, self._observation_log_variance(params))

  def _reconstruction_nll(self, params, x, z):
    return self._output_nll(params, x, self._decode(params, z))

  def per_example_terms(self, params, x, eps: Optional[jax.Array]) -> dict:
    """The objective's terms per example: reconstruction (-log p(x | z) at one
    posterior sample, or at the code) and, for a VAE, the KL."""
    if not self.variational:
      return {"reconstruction": self._reconstruction_nll(params, x, self._encode(params, x))}
    mean, log_variance = self._encode(params, x)
    z = reparameterize(mean, log_variance, eps)
    return {"reconstruction": self._reconstruction_nll(params, x, z),
            "kl": gaussian_kl_to_standard_normal(mean, log_variance)}

  def replica_update(self, state: TrainState, batches: dict, noise: dict):
    player = state.players[AUTOENCODER]
    x = batches["x"][0]

    def objective(params):
      terms = self.per_example_terms(params, x, noise.get("eps"))
      metrics = {name: batch_mean(value) for name, value in terms.items()}
      loss = metrics["reconstruction"]
      if self.variational:
        loss = loss + self.beta * metrics["kl"]
        metrics["negative_elbo"] = metrics["reconstruction"] + metrics["kl"]
      if self.learn_variance:
        metrics["observation_std"] = jnp.exp(0.5 * params[OBSERVATION_LOG_VARIANCE])
      return loss, metrics

    (loss, metrics), grads = jax.value_and_grad(objective, has_aux=True)(player.params)
    player = player.apply_gradients(grads)
    metrics.update(loss=loss, grad_norm=optax.tree.norm(grads))
    return state.replace(step=state.step + 1, players={AUTOENCODER: player}), metrics

  # Inference, on a state; jit them with the family closed over.

  def encode(self, state: TrainState, x: jax.Array) -> jax.Array:
    """The code of each example; for a VAE, the posterior mean."""
    code = self._encode(state.players[AUTOENCODER].params, x)
    return code[0] if self.variational else code

  def decode(self, state: TrainState, z: jax.Array) -> jax.Array:
    """E[x | z] in the data's layout (Bernoulli probabilities, Gaussian means)."""
    return self.likelihood.mean(self._decode(state.players[AUTOENCODER].params, z))

  def reconstruct(self, state: TrainState, x: jax.Array) -> jax.Array:
    return self.decode(state, self.encode(state, x))

  def sample(self, state: TrainState, latents: jax.Array,
             labels: Optional[jax.Array] = None, use_ema: bool = True) -> jax.Array:
    """Decoder means at prior latents. Labels and EMA do not apply (there is
    no conditioning and no weight average); the arguments keep the samplers'
    common signature."""
    del labels, use_ema
    return self.decode(state, latents)

  def evaluate_batch(self, state: TrainState, x: jax.Array, key: jax.Array,
                     iwae_samples: Optional[int] = None) -> dict:
    """Test-set sums over the examples of `x` (divide by `num_examples`):

    * squared_error: sum over values of (x - reconstruct(x))^2;
    * reconstruction: -log p(x | code) for an autoencoder; for a VAE,
      E_q[-log p(x | z)] averaged over the `iwae_samples` posterior samples;
    * kl (VAE): KL(q(z | x) || N(0, I)), closed form;
    * negative_elbo (VAE): reconstruction + kl, an upper bound on -log p(x);
    * iwae_nll (VAE): -log (1/k sum_k p(x, z_k) / q(z_k | x)) with k =
      `iwae_samples`, the importance-weighted bound of Burda et al. (2016).
      In expectation over the samples it is at most the negative ELBO, and
      equal to it at k = 1.

    The k samples are decoded IMPORTANCE_CHUNK at a time; `iwae_samples`
    overrides the family's k (in-training evaluation uses a cheap k = 1).
    """
    k = self.iwae_samples if iwae_samples is None else iwae_samples
    params = state.players[AUTOENCODER].params
    x = jnp.asarray(x, jnp.float32)
    code = self._encode(params, x)
    output = self._decode(params, code[0] if self.variational else code)
    sums = {"num_examples": jnp.float32(x.shape[0]),
            "squared_error": jnp.sum(jnp.square(x - self.likelihood.mean(output)))}
    if not self.variational:
      sums["reconstruction"] = jnp.sum(self._output_nll(params, x, output))
      return sums
    mean, log_variance = code
    eps = jax.random.normal(key, (k, *mean.shape))

    def sample_terms(eps_k):
      z = reparameterize(mean, log_variance, eps_k)
      nll = self._reconstruction_nll(params, x, z)
      # log p(z) - log q(z | x); at z = mean + sigma * eps, q's square term is eps^2.
      log_prior_over_posterior = (gaussian_log_density(z, 0.0, 0.0)
                                  - gaussian_log_density(eps_k, 0.0, 0.0)
                                  + 0.5 * sum_per_example(log_variance))
      return nll, log_prior_over_posterior - nll

    nll, log_weights = jax.lax.map(sample_terms, eps, batch_size=min(k, IMPORTANCE_CHUNK))
    kl = gaussian_kl_to_standard_normal(mean, log_variance)
    log_likelihood_bound = (jax.nn.logsumexp(log_weights, axis=0)
                            - math.log(k))
    reconstruction = jnp.mean(nll, axis=0)
    sums.update(reconstruction=jnp.sum(reconstruction), kl=jnp.sum(kl),
                negative_elbo=jnp.sum(reconstruction + kl),
                iwae_nll=-jnp.sum(log_likelihood_bound))
    return sums

