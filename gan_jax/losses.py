"""Adversarial losses: pure functions of the discriminator's outputs.

Each loss takes the discriminator's raw outputs (logits, or critic values) on
the real batch and on the generated batch and returns both players' losses.
Batch averages go through `batch_mean`, which the step binds to a mean over
the *global* batch (a `lax.pmean` over the data axis); relativistic losses use
it for their centring too, so every loss is independent of the device count.

To add a loss, write one function and register it, in any module imported
before the config is read (`--import=your_module` on the command line):

    @register_loss("my_loss", margin=1.0)
    def my_loss(d_real, d_fake, *, batch_mean, real_target, margin):
      return LossPair(discriminator=..., generator=...)

`real_target` is the label of real data (1, or 1 - s under one-sided label
smoothing s); only losses registered with `label_smoothing=True` accept s > 0.
Keyword options given at registration (here `margin`) are the loss's config,
`loss.my_loss.margin`, with those defaults. A loss registered with
`with_keys=True` also gets `keys`: one raw PRNG key per row of `d_real`,
drawn for the global batch (see `gan_jax.step`), fresh every step and update.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp
from ml_collections import ConfigDict

from gan_jax.registry import ConfigError, Registry, check_options

Array = jax.Array
BatchMean = Callable[[Array], Array]


class LossPair(NamedTuple):
  discriminator: Array
  generator: Array


@dataclasses.dataclass(frozen=True)
class AdversarialLoss:
  """A registered loss and what it says about the discriminator's outputs."""

  fn: Callable[..., LossPair]
  # Maps a raw D output to the probability of "real", where the loss defines
  # one; used only for logging how the game stands.
  to_probability: Optional[Callable[[Array], Array]]
  label_smoothing: bool
  # (name, value) pairs: the declared defaults in the registry, the run's
  # values once `get_loss` has configured it. Pairs keep the loss hashable.
  options: tuple[tuple[str, Any], ...] = ()
  with_keys: bool = False

  def __call__(self, d_real, d_fake, *, batch_mean, real_target, keys=None) -> LossPair:
    extra = {"keys": keys} if self.with_keys else {}
    return self.fn(d_real, d_fake, batch_mean=batch_mean, real_target=real_target,
                   **extra, **dict(self.options))


ADVERSARIAL_LOSSES: Registry[AdversarialLoss] = Registry("adversarial loss")


def register_loss(name: str, *, to_probability=None, label_smoothing=False,
                  with_keys=False, **options):
  def decorator(fn):
    ADVERSARIAL_LOSSES.register(name)(AdversarialLoss(
        fn, to_probability, label_smoothing, tuple(sorted(options.items())), with_keys))
    return fn

  return decorator


def loss_config(name: str = "non_saturating") -> ConfigDict:
  """`config.loss`: the chosen loss, the smoothing, and one entry per
  registered loss that declares options, at their defaults."""
  entries = {loss: dict(ADVERSARIAL_LOSSES.get(loss).options)
             for loss in ADVERSARIAL_LOSSES.names() if ADVERSARIAL_LOSSES.get(loss).options}
  return ConfigDict(dict(name=name, label_smoothing=0.0, **entries))


def local_mean(x: Array) -> Array:
  """The mean over the examples this call sees: the default for calls outside
  the step, which passes `sharding.batch_mean` (the global batch mean)."""
  return jnp.mean(x)


def _binary_cross_entropy(logits: Array, target) -> Array:
  # -t log sigmoid(l) - (1 - t) log(1 - sigmoid(l)), written stably.
  return target * jax.nn.softplus(-logits) + (1.0 - target) * jax.nn.softplus(logits)


def _discriminator_bce(d_real, d_fake, batch_mean, real_target):
  return (batch_mean(_binary_cross_entropy(d_real, real_target))
          + batch_mean(_binary_cross_entropy(d_fake, 0.0)))


@register_loss("minimax", to_probability=jax.nn.sigmoid, label_smoothing=True)
def minimax(d_real, d_fake, *, batch_mean=local_mean, real_target=1.0):
  """The original game (Goodfellow et al. 2014): G minimises log(1 - D(G(z)))."""
  d_loss = _discriminator_bce(d_real, d_fake, batch_mean, real_target)
  # log(1 - sigmoid(l)) = -softplus(l)
  g_loss = batch_mean(-jax.nn.softplus(d_fake))
  return LossPair(d_loss, g_loss)


@register_loss("non_saturating", to_probability=jax.nn.sigmoid,
               label_smoothing=True)
def non_saturating(d_real, d_fake, *, batch_mean=local_mean, real_target=1.0):
  """G maximises log D(G(z)) instead (Goodfellow et al. 2014, section 3)."""
  d_loss = _discriminator_bce(d_real, d_fake, batch_mean, real_target)
  g_loss = batch_mean(jax.nn.softplus(-d_fake))
  return LossPair(d_loss, g_loss)


@register_loss("wasserstein")
def wasserstein(d_real, d_fake, *, batch_mean=local_mean, real_target=1.0):
  """WGAN critic loss (Arjovsky et al. 2017); pair with clipping or a penalty."""
  del real_target
  return LossPair(batch_mean(d_fake) - batch_mean(d_real), -batch_mean(d_fake))


@register_loss("hinge")
def hinge(d_real, d_fake, *, batch_mean=local_mean, real_target=1.0):
  """Hinge loss (Lim & Ye 2017; Miyato et al. 2018)."""
  del real_target
  d_loss = batch_mean(jax.nn.relu(1.0 - d_real)) + batch_mean(jax.nn.relu(1.0 + d_fake))
  return LossPair(d_loss, -batch_mean(d_fake))


@register_loss("least_squares", label_smoothing=True)
def least_squares(d_real, d_fake, *, batch_mean=local_mean, real_target=1.0):
  """LSGAN with the 0-1 coding a=0, b=c=1 (Mao et al. 2017, eq. 2)."""
  d_loss = 0.5 * batch_mean((d_real - real_target) ** 2) + 0.5 * batch_mean(d_fake ** 2)
  g_loss = 0.5 * batch_mean((d_fake - 1.0) ** 2)
  return LossPair(d_loss, g_loss)


@register_loss("relativistic_average", label_smoothing=True)
def relativistic_average(d_real, d_fake, *, batch_mean=local_mean,
                         real_target=1.0):
  """RaSGAN (Jolicoeur-Martineau 2018): each side judged against the other's mean."""
  real_vs_fake = d_real - batch_mean(d_fake)
  fake_vs_real = d_fake - batch_mean(d_real)
  d_loss = (batch_mean(_binary_cross_entropy(real_vs_fake, real_target))
            + batch_mean(_binary_cross_entropy(fake_vs_real, 0.0)))
  g_loss = (batch_mean(_binary_cross_entropy(fake_vs_real, 1.0))
            + batch_mean(_binary_cross_entropy(real_vs_fake, 0.0)))
  return LossPair(d_loss, g_loss)


def get_loss(name: str, label_smoothing: float = 0.0,
             loss_section: Optional[dict] = None) -> tuple[AdversarialLoss, float]:
  """Looks up a loss and checks its options (`loss_section` is `config.loss`);
  returns it configured, and the real target."""
  loss = ADVERSARIAL_LOSSES.get(name)
  if loss_section is not None:
    with_options = {n for n in ADVERSARIAL_LOSSES.names() if ADVERSARIAL_LOSSES.get(n).options}
    check_options("loss", set(loss_section), {"name", "label_smoothing"} | with_options)
    chosen = dict(loss_section.get(name, {}))
    check_options(f"loss '{name}'", set(chosen), set(dict(loss.options)))
    loss = dataclasses.replace(loss, options=tuple(sorted({**dict(loss.options),
                                                            **chosen}.items())))
  if not 0.0 <= label_smoothing < 1.0:
    raise ConfigError(f"loss.label_smoothing must be in [0, 1), got {label_smoothing}.")
  if label_smoothing and not loss.label_smoothing:
    takes = [n for n in ADVERSARIAL_LOSSES.names()
             if ADVERSARIAL_LOSSES.get(n).label_smoothing]
    raise ConfigError(
        f"Loss '{name}' has no real-label target to smooth. Losses that take "
        f"loss.label_smoothing: {', '.join(takes)}.")
  return loss, 1.0 - label_smoothing
