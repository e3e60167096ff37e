"""Discriminator regularisers and constraints, composable with any loss.

A regulariser receives `discriminate` (inputs -> D outputs, with the current
discriminator parameters bound), the real and generated inputs, per-example
interpolation weights drawn for the global batch, and `batch_mean`. It returns
a scalar that the step adds to the discriminator's loss, times its weight.

To add one, register it in any module imported before the config is read
(`--import=your_module` on the command line):

    @register_regularizer("my_penalty", target=1.0)
    def my_penalty(discriminate, real, fake, interpolation, *, batch_mean, target):
      return batch_mean(...)

Registering gives it a config entry `regularizers.my_penalty` with `weight`
(default 0: off), `every` (lazy regularisation: applied every k steps, scaled
by k) and the declared options at their defaults. Registered with
`with_keys=True`, it also gets `keys`: one raw PRNG key per row of `real`,
drawn for the global batch, fresh every step and critic update.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import jax
import jax.numpy as jnp
from ml_collections import ConfigDict

from gan_jax.losses import local_mean
from gan_jax.registry import Registry, check_options

Array = jax.Array
# Every regulariser's config entry has these, whatever it declares.
SCHEDULE_OPTIONS = {"weight": 0.0, "every": 1}


@dataclasses.dataclass(frozen=True)
class Regularizer:
  fn: Callable[..., Array]
  options: tuple[tuple[str, Any], ...] = ()  # declared defaults, as (name, value)
  with_keys: bool = False


REGULARIZERS: Registry[Regularizer] = Registry("regularizer")


def register_regularizer(name: str, *, with_keys: bool = False, **options):
  clash = set(options) & set(SCHEDULE_OPTIONS)
  if clash:
    raise ValueError(f"Regularizer options {sorted(clash)} are set by every entry.")

  def decorator(fn):
    REGULARIZERS.register(name)(Regularizer(fn, tuple(sorted(options.items())), with_keys))
    return fn

  return decorator


def regularizer_config() -> ConfigDict:
  """`config.regularizers`: one entry per registered regulariser, off."""
  return ConfigDict({name: {**SCHEDULE_OPTIONS, **dict(REGULARIZERS.get(name).options)}
                     for name in REGULARIZERS.names()})


def configured_options(name: str, entry: dict) -> dict:
  """A regulariser's own options from its config entry, checked against the
  declared ones (defaults filled in)."""
  declared = dict(REGULARIZERS.get(name).options)
  check_options(f"regularizers.{name}", set(entry), set(declared) | set(SCHEDULE_OPTIONS))
  return {k: entry.get(k, v) for k, v in declared.items()}


def _input_gradient_sq_norms(discriminate, inputs: Array) -> Array:
  """Per-example squared norm of dD/dx; examples are independent in D."""
  grads = jax.grad(lambda x: jnp.sum(discriminate(x)))(inputs)
  return jnp.sum(jnp.reshape(grads, (grads.shape[0], -1)) ** 2, axis=1)


@register_regularizer("gradient_penalty")
def gradient_penalty(discriminate, real, fake, interpolation, *,
                     batch_mean=local_mean):
  """WGAN-GP (Gulrajani et al. 2017): E[(||grad D(x_hat)|| - 1)^2] on
  x_hat = t * real + (1 - t) * fake, t ~ U[0, 1] per example."""
  t = jnp.reshape(interpolation, (-1,) + (1,) * (real.ndim - 1))
  mixed = t * real + (1.0 - t) * jax.lax.stop_gradient(fake)
  # sqrt has an infinite derivative at 0; the epsilon keeps it finite.
  norms = jnp.sqrt(_input_gradient_sq_norms(discriminate, mixed) + 1e-12)
  return batch_mean((norms - 1.0) ** 2)


@register_regularizer("r1")
def r1_penalty(discriminate, real, fake, interpolation, *,
               batch_mean=local_mean):
  """R1 (Mescheder et al. 2018): (1/2) E||grad D(x_real)||^2, so the weight is gamma."""
  del fake, interpolation
  return 0.5 * batch_mean(_input_gradient_sq_norms(discriminate, real))


def clip_weights(params, limit: float):
  """WGAN weight clipping (Arjovsky et al. 2017), applied after each D update."""
  return jax.tree.map(lambda p: jnp.clip(p, -limit, limit), params)
