"""DCGAN (Radford et al. 2016) for 28, 32 and 64-pixel square images.

G projects z to a small map (7x7 for 28 px, 4x4 for 32 and 64 px) and doubles
it with stride-2 transposed convolutions, halving the width each time, with
batch norm + ReLU between layers and a tanh output. At 64 px,
base_features=64 gives the PyTorch reference's 4x4x512 start; the paper's
figure starts at 4x4x1024 (base_features=128). D mirrors G: stride-2
convolutions doubling the width from base_features, leaky ReLU, then one
dense logit; with minibatch_stddev > 0, StyleGAN's minibatch standard
deviation joins D's last feature map as one more channel. D has no batch norm
by default, so its output for one example
does not depend on the rest of the batch (which gradient penalties assume).

Weights start from N(0, 0.02), as in the paper, and batch-norm gains from
N(1, 0.02), as in the PyTorch example; so class-conditional gains already
differ a little between classes at initialisation.

Conditioning (num_classes > 0): every batch norm of G is class-conditional
(a gain and bias per class), and with label_embedding_dim > 0 a learned label
embedding is also concatenated to z; D ends in a projection head on its
flattened features. Labels are then required.

A latent code (InfoGAN, Chen et al. 2016; gan_jax.gan): G is conditioned on
a categorical code exactly as on a label, and D (code_categories > 0) gains
the auxiliary head Q, a small MLP on D's flattened features that predicts
the code; D then returns (logit, code_logits).
"""

from __future__ import annotations

import math
from typing import Any, Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from gan_jax.models import DISCRIMINATORS, GENERATORS
from gan_jax.models.batch_norm import BatchNorm
from gan_jax.models.layers import (ConditionalBatchNorm, ProjectionHead, SNConv,
                                   minibatch_stddev, require_labels)
from gan_jax.models.transposed_conv import conv_layer, conv_transpose_layer
from gan_jax.precision import BOUNDARY_DTYPE
from gan_jax.registry import ConfigError
from gan_jax.sharding import DATA_AXIS

# Image side -> side of G's first feature map (and of D's last one).
SMALLEST_SIDE = {28: 7, 32: 4, 64: 4}

WEIGHT_INIT = nn.initializers.normal(0.02)


def gain_init(key, shape, dtype=jnp.float32):
  return 1.0 + 0.02 * jax.random.normal(key, shape, dtype)


def num_resolution_steps(height: int, width: int, model: str) -> int:
  """How many stride-2 layers link the image to the smallest feature map."""
  if height != width or height not in SMALLEST_SIDE:
    raise ConfigError(
        f"{model} supports square images of side {', '.join(map(str, SMALLEST_SIDE))} "
        f"pixels, got {height}x{width}.")
  return int(math.log2(height // SMALLEST_SIDE[height]))


@GENERATORS.register("dcgan")
class DCGANGenerator(nn.Module):
  output_shape: Sequence[int]  # (height, width, channels)
  base_features: int = 64  # width of the last hidden layer; doubles towards z
  kernel_size: int = 4
  num_classes: int = 0  # 0: unconditional
  # "xla" (nn.ConvTranspose) or "phase", the same function as four stride-1
  # convolutions; None: the backend's choice (gan_jax.backend), never config.
  conv_transpose: Optional[str] = None
  # > 0 (conditional only): a learned label embedding of this size is
  # concatenated to z, besides the conditional batch norm.
  label_embedding_dim: int = 0
  axis_name: Optional[str] = DATA_AXIS
  dtype: Optional[Any] = None  # hidden layers' compute dtype (gan_jax.precision)

  @nn.compact
  def __call__(self, z, labels=None, *, train: bool = True):
    if len(self.output_shape) != 3:
      raise ConfigError(f"dcgan generator needs an (height, width, channels) output_shape, "
                        f"got {tuple(self.output_shape)}.")
    height, width, channels = self.output_shape
    steps = num_resolution_steps(height, width, "dcgan generator")
    require_labels(labels, self.num_classes, "dcgan generator")

    def norm_relu(x):
      x = ConditionalBatchNorm(self.num_classes, gain_init=gain_init,
                               axis_name=self.axis_name, dtype=self.dtype)(
                                   x, labels, train=train)
      return nn.relu(x)

    if self.num_classes and self.label_embedding_dim:
      embedding = nn.Embed(self.num_classes, self.label_embedding_dim,
                           embedding_init=nn.initializers.normal(1.0))(labels)
      z = jnp.concatenate([z, embedding.astype(z.dtype)], axis=-1)
    side = SMALLEST_SIDE[height]
    features = self.base_features * 2 ** (steps - 1)
    # No bias before batch norm: BN removes it.
    x = nn.Dense(side * side * features, use_bias=False, kernel_init=WEIGHT_INIT,
                 dtype=self.dtype)(z)
    x = norm_relu(jnp.reshape(x, (z.shape[0], side, side, features)))
    kernel = (self.kernel_size, self.kernel_size)
    conv_transpose = conv_transpose_layer(self.conv_transpose)
    for _ in range(steps - 1):
      features //= 2
      x = conv_transpose(features, kernel, strides=(2, 2), padding="SAME",
                         use_bias=False, kernel_init=WEIGHT_INIT, dtype=self.dtype)(x)
      x = norm_relu(x)
    x = conv_transpose(channels, kernel, strides=(2, 2), padding="SAME",
                       kernel_init=WEIGHT_INIT, dtype=BOUNDARY_DTYPE)(x)
    return jnp.tanh(x)


@DISCRIMINATORS.register("dcgan")
class DCGANDiscriminator(nn.Module):
  base_features: int = 64  # width of the first conv; doubles per layer
  kernel_size: int = 4
  leaky_relu_slope: float = 0.2
  batch_norm: bool = False  # the paper's BN after every conv but the first
  spectral_norm: bool = False  # SN-GAN's "standard CNN" when True
  # > 0: group size of the minibatch standard-deviation feature (StyleGAN
  # uses 4), which shows D how varied a batch is; 0: off.
  minibatch_stddev: int = 0
  num_classes: int = 0  # 0: unconditional
  code_categories: int = 0  # > 0: also return Q's logits over a latent code
  # "xla" (nn.Conv) or "phase", the same function with the input derivative
  # computed as four stride-1 convolutions (the generator's "phase" trick);
  # None: the backend's choice (gan_jax.backend), never config.
  conv: Optional[str] = None
  axis_name: Optional[str] = DATA_AXIS
  dtype: Optional[Any] = None  # hidden layers' compute dtype (gan_jax.precision)

  @nn.compact
  def __call__(self, x, labels=None, *, train: bool = True):
    steps = num_resolution_steps(x.shape[1], x.shape[2], "dcgan discriminator")
    strided_conv = conv_layer(self.conv)
    require_labels(labels, self.num_classes, "dcgan discriminator")
    kernel = (self.kernel_size, self.kernel_size)
    for i in range(steps):
      normalize = self.batch_norm and i > 0
      features = self.base_features * 2 ** i
      dtype = BOUNDARY_DTYPE if i == 0 else self.dtype  # the input layer: float32
      if self.spectral_norm:
        x = SNConv(features, kernel, strides=2, use_bias=not normalize,
                   kernel_init=WEIGHT_INIT, dtype=dtype)(x, train=train)
      else:
        x = strided_conv(features, kernel, strides=(2, 2), padding="SAME",
                         use_bias=not normalize, kernel_init=WEIGHT_INIT, dtype=dtype)(x)
      if normalize:
        x = BatchNorm(use_running_average=not train, scale_init=gain_init,
                      axis_name=self.axis_name, dtype=self.dtype)(x)
      x = nn.leaky_relu(x, self.leaky_relu_slope)
    if self.minibatch_stddev:
      x = minibatch_stddev(x, self.minibatch_stddev)
    h = jnp.reshape(x, (x.shape[0], -1))
    logit = ProjectionHead(self.num_classes, spectral_norm=self.spectral_norm,
                           kernel_init=WEIGHT_INIT)(h, labels, train=train)
    if not self.code_categories:
      return logit
    # Q as in InfoGAN's MNIST model (one hidden layer on D's features), without
    # its batch norm, so that D's outputs stay independent across the batch.
    q = nn.leaky_relu(nn.Dense(128, kernel_init=WEIGHT_INIT)(h.astype(BOUNDARY_DTYPE)),
                      self.leaky_relu_slope)
    return logit, nn.Dense(self.code_categories, kernel_init=WEIGHT_INIT)(q)
