"""Discriminator regularisers and constraints, composable with any loss.

A regulariser receives `discriminate` (inputs -> D outputs, with the current
discriminator parameters bound), the real and generated inputs, per-example
interpolation weights drawn for the global batch, and `batch_mean`. It returns
a scalar that the step adds to the discriminator's loss, times its weight.
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

from gan_jax.losses import global_mean
from gan_jax.registry import Registry

Array = jax.Array
REGULARIZERS: Registry[Callable[..., Array]] = Registry("regularizer")


def _input_gradient_sq_norms(discriminate, inputs: Array) -> Array:
  """Per-example squared norm of dD/dx; examples are independent in D."""
  grads = jax.grad(lambda x: jnp.sum(discriminate(x)))(inputs)
  return jnp.sum(jnp.reshape(grads, (grads.shape[0], -1)) ** 2, axis=1)


@REGULARIZERS.register("gradient_penalty")
def gradient_penalty(discriminate, real, fake, interpolation, *,
                     batch_mean=global_mean):
  """WGAN-GP (Gulrajani et al. 2017): E[(||grad D(x_hat)|| - 1)^2] on
  x_hat = t * real + (1 - t) * fake, t ~ U[0, 1] per example."""
  t = jnp.reshape(interpolation, (-1,) + (1,) * (real.ndim - 1))
  mixed = t * real + (1.0 - t) * jax.lax.stop_gradient(fake)
  # sqrt has an infinite derivative at 0; the epsilon keeps it finite.
  norms = jnp.sqrt(_input_gradient_sq_norms(discriminate, mixed) + 1e-12)
  return batch_mean((norms - 1.0) ** 2)


@REGULARIZERS.register("r1")
def r1_penalty(discriminate, real, fake, interpolation, *,
               batch_mean=global_mean):
  """R1 (Mescheder et al. 2018): (1/2) E||grad D(x_real)||^2, so the weight is gamma."""
  del fake, interpolation
  return 0.5 * batch_mean(_input_gradient_sq_norms(discriminate, real))


def clip_weights(params, limit: float):
  """WGAN weight clipping (Arjovsky et al. 2017), applied after each D update."""
  return jax.tree.map(lambda p: jnp.clip(p, -limit, limit), params)
