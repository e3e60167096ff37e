"""Fully connected generator and discriminator for low-dimensional data."""

from __future__ import annotations

import math
from typing import Any, Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from gan_jax.models import DISCRIMINATORS, GENERATORS
from gan_jax.models.batch_norm import BatchNorm
from gan_jax.precision import BOUNDARY_DTYPE
from gan_jax.sharding import DATA_AXIS


def fan_in_uniform_bias(fan_in: int):
  """U(-1/sqrt(fan_in), 1/sqrt(fan_in)) biases (the LeCun-uniform range).

  With zero biases every first-layer ReLU bends at x = 0, so on data far from
  the origin (the toy N(10, 4)) the network is linear and blind to variance;
  random biases spread the bends over the input range.
  """
  bound = 1.0 / math.sqrt(fan_in)

  def init(key, shape, dtype=jnp.float32):
    return jax.random.uniform(key, shape, dtype, -bound, bound)

  return init


@GENERATORS.register("mlp")
class MLPGenerator(nn.Module):
  output_shape: Sequence[int]
  hidden_units: int = 128
  num_hidden_layers: int = 3
  batch_norm: bool = False
  axis_name: Optional[str] = DATA_AXIS
  dtype: Optional[Any] = None  # hidden layers' compute dtype (gan_jax.precision)

  @nn.compact
  def __call__(self, z, labels=None, *, train: bool = True):
    x = z
    for _ in range(self.num_hidden_layers):
      # A bias before batch norm is redundant (BN removes it).
      x = nn.Dense(self.hidden_units, use_bias=not self.batch_norm, dtype=self.dtype)(x)
      if self.batch_norm:
        x = BatchNorm(use_running_average=not train, axis_name=self.axis_name,
                      dtype=self.dtype)(x)
      x = nn.relu(x)
    x = nn.Dense(math.prod(self.output_shape), dtype=BOUNDARY_DTYPE)(x)
    return jnp.reshape(x, (z.shape[0], *self.output_shape))


@DISCRIMINATORS.register("mlp")
class MLPDiscriminator(nn.Module):
  hidden_units: int = 128
  num_hidden_layers: int = 3
  leaky_relu_slope: float = 0.2
  random_bias_init: bool = False
  dtype: Optional[Any] = None  # hidden layers' compute dtype (gan_jax.precision)

  @nn.compact
  def __call__(self, x, labels=None, *, train: bool = True):
    x = jnp.reshape(x, (x.shape[0], -1))
    for i in range(self.num_hidden_layers):
      bias_init = (fan_in_uniform_bias(x.shape[-1]) if self.random_bias_init
                   else nn.initializers.zeros)
      x = nn.Dense(self.hidden_units, bias_init=bias_init,
                   dtype=BOUNDARY_DTYPE if i == 0 else self.dtype)(x)
      x = nn.leaky_relu(x, self.leaky_relu_slope)
    return nn.Dense(1, dtype=BOUNDARY_DTYPE)(x)[:, 0]
