"""The GAN model family: players, noise, and the per-replica adversarial update.

One step = `n_critic` discriminator updates, each on a fresh real batch, then
one generator update. All reductions over the batch go through `batch_mean`,
a mean over the global batch (see `gan_jax.step` for why this also averages
the gradients across replicas).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import optax
from jax import lax

from gan_jax import losses, regularizers
from gan_jax.models import DATA_AXIS, DISCRIMINATORS, GENERATORS, build_module
from gan_jax.optimizers import make_optimizer
from gan_jax.registry import ConfigError
from gan_jax.state import Player, TrainState

GENERATOR = "generator"
DISCRIMINATOR = "discriminator"


def batch_mean(x: jax.Array) -> jax.Array:
  """Mean over the global batch, from inside the per-replica code."""
  return lax.pmean(jnp.mean(x), DATA_AXIS)


def pack(x: jax.Array, pack_size: int) -> jax.Array:
  """PacGAN packing (Lin et al. 2018): m consecutive examples become one,
  concatenated along the last (feature or channel) axis."""
  if pack_size == 1:
    return x
  b, rest = x.shape[0], x.shape[1:]
  x = jnp.reshape(x, (b // pack_size, pack_size, *rest))
  x = jnp.moveaxis(x, 1, -2)
  return jnp.reshape(x, (b // pack_size, *rest[:-1], pack_size * rest[-1]))


@dataclasses.dataclass(frozen=True)
class RegularizerTerm:
  name: str
  fn: Any
  weight: float
  every: int  # lazy regularisation: applied every k steps, scaled by k


@dataclasses.dataclass(frozen=True)
class GANFamily:
  """Static description of a GAN run; hashable, so it can close over jit."""

  generator: Any
  discriminator: Any
  latent_dim: int
  data_shape: tuple[int, ...]
  loss: losses.AdversarialLoss
  real_target: float
  regularizer_terms: tuple[RegularizerTerm, ...]
  n_critic: int
  pack_size: int
  weight_clip: float

  @property
  def batches_per_step(self) -> int:
    return self.n_critic

  @classmethod
  def from_config(cls, config, data_shape: tuple[int, ...]) -> "GANFamily":
    generator = build_module(GENERATORS, config.generator.name,
                             _options(config.generator), output_shape=tuple(data_shape))
    discriminator = build_module(DISCRIMINATORS, config.discriminator.name,
                                 _options(config.discriminator))
    loss, real_target = losses.get_loss(config.loss.name, config.loss.label_smoothing)
    terms = []
    for name, reg in config.regularizers.items():
      fn = regularizers.REGULARIZERS.get(name)
      if reg.weight:
        if reg.get("every", 1) < 1:
          raise ConfigError(f"regularizers.{name}.every must be >= 1.")
        terms.append(RegularizerTerm(name, fn, float(reg.weight), int(reg.get("every", 1))))
    if config.n_critic < 1:
      raise ConfigError(f"n_critic must be >= 1, got {config.n_critic}.")
    if config.latent_dim < 1:
      raise ConfigError(f"latent_dim must be >= 1, got {config.latent_dim}.")
    return cls(generator=generator, discriminator=discriminator,
               latent_dim=config.latent_dim, data_shape=tuple(data_shape),
               loss=loss, real_target=real_target, regularizer_terms=tuple(terms),
               n_critic=config.n_critic, pack_size=config.pack_size,
               weight_clip=config.weight_clip)

  def create_state(self, config) -> TrainState:
    key = jax.random.PRNGKey(config.seed)
    g_key, d_key = jax.random.split(jax.random.fold_in(key, 0x1D17))
    z = jnp.zeros((self.pack_size, self.latent_dim), jnp.float32)
    g_vars = self.generator.init(g_key, z, train=False)
    x = jnp.zeros((1, *self.data_shape[:-1], self.pack_size * self.data_shape[-1]),
                  jnp.float32)
    d_vars = self.discriminator.init(d_key, x, train=False)
    players = {
        GENERATOR: Player.create(self.generator, make_optimizer(config.optimizer.generator), g_vars),
        DISCRIMINATOR: Player.create(self.discriminator,
                                     make_optimizer(config.optimizer.discriminator), d_vars),
    }
    return TrainState.create(config.seed, players)

  def draw_noise(self, key, global_batch_size: int) -> dict:
    critic_key, gen_key, interp_key = jax.random.split(key, 3)
    b = global_batch_size
    return {
        "z_critic": jax.random.normal(critic_key, (b, self.n_critic, self.latent_dim)),
        "z_generator": jax.random.normal(gen_key, (b, self.latent_dim)),
        "interpolation": jax.random.uniform(interp_key, (b, self.n_critic)),
    }

  def sample(self, state: TrainState, latents: jax.Array) -> jax.Array:
    """Generated samples in the data's layout; EMA weights where they exist."""
    g = state.players[GENERATOR]
    params = g.params if g.ema_params is None else g.ema_params
    samples, _ = g.apply(params, latents, train=False)
    return samples

  def replica_update(self, state: TrainState, batches: dict, noise: dict):
    g = state.players[GENERATOR]
    d = state.players[DISCRIMINATOR]
    critic_metrics = []
    for i in range(self.n_critic):
      real = batches["x"][i]
      fake, g_collections = g.apply(g.params, noise["z_critic"][:, i], train=True)
      fake = lax.stop_gradient(fake)
      interpolation = noise["interpolation"][:, i]

      def d_objective(d_params):
        return self._discriminator_objective(d, d_params, real, fake, interpolation,
                                             state.step)

      grads, (d_collections, metrics) = jax.grad(d_objective, has_aux=True)(d.params)
      d = d.apply_gradients(grads, d_collections)
      if self.weight_clip > 0:
        d = d.replace(params=regularizers.clip_weights(d.params, self.weight_clip))
      # G's batch statistics follow its every training-mode pass, as in PyTorch.
      g = g.replace(collections=g_collections)
      critic_metrics.append({**metrics, "grad_norm_d": optax.tree.norm(grads)})

    last_real = batches["x"][-1]

    def g_objective(g_params):
      fake, g_collections = g.apply(g_params, noise["z_generator"], train=True)
      d_fake, _ = d.apply(d.params, pack(fake, self.pack_size), train=True)
      d_real, _ = d.apply(d.params, pack(last_real, self.pack_size), train=True)
      pair = self.loss.fn(lax.stop_gradient(d_real), d_fake, batch_mean=batch_mean,
                          real_target=self.real_target)
      return pair.generator, g_collections

    (g_loss, g_collections), grads = jax.value_and_grad(g_objective, has_aux=True)(g.params)
    g = g.apply_gradients(grads, g_collections)

    metrics = jax.tree.map(lambda *xs: jnp.mean(jnp.stack(xs)), *critic_metrics)
    metrics.update(loss_g=g_loss, grad_norm_g=optax.tree.norm(grads))
    new_state = state.replace(step=state.step + 1,
                              players={GENERATOR: g, DISCRIMINATOR: d})
    return new_state, metrics

  def _discriminator_objective(self, d: Player, d_params, real, fake, interpolation, step):
    real_packed = pack(real, self.pack_size)
    fake_packed = pack(fake, self.pack_size)
    d_real, collections = d.apply(d_params, real_packed, train=True)
    d = d.replace(collections=collections)
    d_fake, collections = d.apply(d_params, fake_packed, train=True)
    pair = self.loss.fn(d_real, d_fake, batch_mean=batch_mean, real_target=self.real_target)
    total = pair.discriminator
    metrics = {"loss_d": pair.discriminator, "d_real": batch_mean(d_real),
               "d_fake": batch_mean(d_fake)}
    if self.loss.to_probability is not None:
      metrics["p_real"] = batch_mean(self.loss.to_probability(d_real))
      metrics["p_fake"] = batch_mean(self.loss.to_probability(d_fake))

    def discriminate(x):
      return d.apply(d_params, x, train=True)[0]

    packed_interpolation = interpolation[::self.pack_size]
    for term in self.regularizer_terms:
      def penalty(term=term):
        return term.fn(discriminate, real_packed, fake_packed, packed_interpolation,
                       batch_mean=batch_mean)
      if term.every > 1:
        value = lax.cond(step % term.every == 0, lambda: term.every * penalty(),
                         lambda: jnp.zeros((), jnp.float32))
      else:
        value = penalty()
      metrics[f"reg_{term.name}"] = value
      total = total + term.weight * value
    return total, (collections, metrics)


def _options(module_config) -> dict:
  return {k: v for k, v in module_config.to_dict().items() if k != "name"}
