"""The explainers' toy generator: x = (z + theta1) * theta2, z ~ N(0, 1).

With z standard normal the samples are N(theta1 * theta2, theta2^2), so the
learnt parameters can be read off directly against the data's N(10, 4).
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp

from gan_jax.models import GENERATORS


@GENERATORS.register("affine_noise")
class AffineNoiseGenerator(nn.Module):
  output_shape: Sequence[int] = (1,)
  theta1_init: float = 3.0
  theta2_init: float = 1.0

  @nn.compact
  def __call__(self, z, labels=None, *, train: bool = True):
    theta1 = self.param("theta1", nn.initializers.constant(self.theta1_init), ())
    theta2 = self.param("theta2", nn.initializers.constant(self.theta2_init), ())
    return jnp.reshape((z + theta1) * theta2, (z.shape[0], *self.output_shape))
