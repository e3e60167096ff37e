"""Fully connected generator and discriminator for low-dimensional data."""

from __future__ import annotations

import math
from typing import Optional, Sequence

import flax.linen as nn
import jax.numpy as jnp

from gan_jax.models import DATA_AXIS, DISCRIMINATORS, GENERATORS


@GENERATORS.register("mlp")
class MLPGenerator(nn.Module):
  output_shape: Sequence[int]
  hidden_units: int = 128
  num_hidden_layers: int = 3
  batch_norm: bool = False
  axis_name: Optional[str] = DATA_AXIS

  @nn.compact
  def __call__(self, z, labels=None, *, train: bool = True):
    x = z
    for _ in range(self.num_hidden_layers):
      # A bias before batch norm is redundant (BN removes it).
      x = nn.Dense(self.hidden_units, use_bias=not self.batch_norm)(x)
      if self.batch_norm:
        x = nn.BatchNorm(use_running_average=not train, axis_name=self.axis_name)(x)
      x = nn.relu(x)
    x = nn.Dense(math.prod(self.output_shape))(x)
    return jnp.reshape(x, (z.shape[0], *self.output_shape))


@DISCRIMINATORS.register("mlp")
class MLPDiscriminator(nn.Module):
  hidden_units: int = 128
  num_hidden_layers: int = 3
  leaky_relu_slope: float = 0.2

  @nn.compact
  def __call__(self, x, labels=None, *, train: bool = True):
    x = jnp.reshape(x, (x.shape[0], -1))
    for _ in range(self.num_hidden_layers):
      x = nn.leaky_relu(nn.Dense(self.hidden_units)(x), self.leaky_relu_slope)
    return nn.Dense(1)(x)[:, 0]
