"""The SN-GAN ResNet for 32x32 images (Miyato et al. 2018, CIFAR-10 models).

G: z -> dense 4x4xF -> three up-sampling residual blocks of F channels (BN,
ReLU, nearest-neighbour up-sampling, 3x3 convs; a 1x1 conv on the shortcut)
-> BN, ReLU, 3x3 conv, tanh. F = 256 in the paper.
D: an "optimised" first block and one more block that halve the resolution,
two blocks at 8x8, all of F channels (128 in the paper), spectral norm on
every layer, ReLU, a sum over positions and a spectrally normalised dense
logit. D has no batch-dependent layers.

Conditioning (num_classes > 0), as in Miyato & Koyama 2018: the residual
blocks' batch norms in G are class-conditional (the last BN is not) and D
ends in a projection head. Labels are then required.

Initialisation follows the authors' code: Glorot-uniform, scaled by sqrt(2)
on the residual branches.
"""

from __future__ import annotations

import math
from typing import Any, Optional, Sequence

import flax.linen as nn
import jax.numpy as jnp

from gan_jax.models import DISCRIMINATORS, GENERATORS
from gan_jax.models.layers import (ConditionalBatchNorm, ProjectionHead, SNConv,
                                   require_labels)
from gan_jax.precision import BOUNDARY_DTYPE
from gan_jax.registry import ConfigError
from gan_jax.sharding import DATA_AXIS

IMAGE_SIDE = 32
FIRST_SIDE = 4
SHORTCUT_INIT = nn.initializers.xavier_uniform()
RESIDUAL_INIT = nn.initializers.variance_scaling(2.0, "fan_avg", "uniform")


def check_image_size(height: int, width: int, model: str) -> None:
  if (height, width) != (IMAGE_SIDE, IMAGE_SIDE):
    raise ConfigError(f"{model} is the 32x32 (CIFAR) architecture; got {height}x{width} "
                      "images. Use the dcgan models for other sizes.")


def upsample(x):
  """Nearest-neighbour 2x up-sampling of NHWC maps."""
  return jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)


def downsample(x):
  return nn.avg_pool(x, (2, 2), strides=(2, 2))


class GeneratorBlock(nn.Module):
  features: int
  num_classes: int
  axis_name: Optional[str]
  dtype: Optional[Any] = None  # compute dtype (gan_jax.precision)

  @nn.compact
  def __call__(self, x, labels, *, train: bool):
    def norm_relu(h):
      return nn.relu(ConditionalBatchNorm(self.num_classes, axis_name=self.axis_name,
                                          dtype=self.dtype)(h, labels, train=train))

    h = upsample(norm_relu(x))
    # No bias before batch norm: BN removes it.
    h = nn.Conv(self.features, (3, 3), use_bias=False, kernel_init=RESIDUAL_INIT,
                dtype=self.dtype)(h)
    h = nn.Conv(self.features, (3, 3), kernel_init=RESIDUAL_INIT,
                dtype=self.dtype)(norm_relu(h))
    shortcut = nn.Conv(self.features, (1, 1), kernel_init=SHORTCUT_INIT,
                       dtype=self.dtype)(upsample(x))
    return h + shortcut


class DiscriminatorBlock(nn.Module):
  features: int
  downsample: bool
  first: bool = False  # the input block: no leading ReLU, pooling before the 1x1 shortcut
  dtype: Optional[Any] = None  # compute dtype (gan_jax.precision)

  @nn.compact
  def __call__(self, x, *, train: bool):
    # The input block's layers that read the data compute in float32.
    input_dtype = BOUNDARY_DTYPE if self.first else self.dtype
    h = x if self.first else nn.relu(x)
    h = SNConv(self.features, (3, 3), kernel_init=RESIDUAL_INIT, dtype=input_dtype)(
        h, train=train)
    h = SNConv(self.features, (3, 3), kernel_init=RESIDUAL_INIT, dtype=self.dtype)(
        nn.relu(h), train=train)
    if self.downsample:
      h = downsample(h)
    if self.first:
      shortcut = SNConv(self.features, (1, 1), kernel_init=SHORTCUT_INIT, dtype=input_dtype)(
          downsample(x), train=train)
    elif self.downsample or x.shape[-1] != self.features:
      shortcut = SNConv(self.features, (1, 1), kernel_init=SHORTCUT_INIT, dtype=self.dtype)(
          x, train=train)
      shortcut = downsample(shortcut) if self.downsample else shortcut
    else:
      shortcut = x
    return h + shortcut


@GENERATORS.register("sngan_resnet")
class SNGANResNetGenerator(nn.Module):
  output_shape: Sequence[int]  # (32, 32, channels)
  features: int = 256
  num_classes: int = 0  # 0: unconditional
  axis_name: Optional[str] = DATA_AXIS
  dtype: Optional[Any] = None  # hidden layers' compute dtype (gan_jax.precision)

  @nn.compact
  def __call__(self, z, labels=None, *, train: bool = True):
    if len(self.output_shape) != 3:
      raise ConfigError("sngan_resnet generator needs an (height, width, channels) "
                        f"output_shape, got {tuple(self.output_shape)}.")
    height, width, channels = self.output_shape
    check_image_size(height, width, "sngan_resnet generator")
    require_labels(labels, self.num_classes, "sngan_resnet generator")
    x = nn.Dense(FIRST_SIDE * FIRST_SIDE * self.features, kernel_init=SHORTCUT_INIT,
                 dtype=self.dtype)(z)
    x = jnp.reshape(x, (z.shape[0], FIRST_SIDE, FIRST_SIDE, self.features))
    for _ in range(int(math.log2(IMAGE_SIDE // FIRST_SIDE))):
      x = GeneratorBlock(self.features, self.num_classes, self.axis_name, self.dtype)(
          x, labels, train=train)
    x = nn.relu(ConditionalBatchNorm(axis_name=self.axis_name, dtype=self.dtype)(
        x, train=train))
    x = nn.Conv(channels, (3, 3), kernel_init=SHORTCUT_INIT, dtype=BOUNDARY_DTYPE)(x)
    return jnp.tanh(x)


@DISCRIMINATORS.register("sngan_resnet")
class SNGANResNetDiscriminator(nn.Module):
  features: int = 128
  num_classes: int = 0  # 0: unconditional
  dtype: Optional[Any] = None  # hidden layers' compute dtype (gan_jax.precision)

  @nn.compact
  def __call__(self, x, labels=None, *, train: bool = True):
    check_image_size(x.shape[1], x.shape[2], "sngan_resnet discriminator")
    require_labels(labels, self.num_classes, "sngan_resnet discriminator")
    for i, down in enumerate((True, True, False, False)):
      x = DiscriminatorBlock(self.features, downsample=down, first=i == 0,
                             dtype=self.dtype)(x, train=train)
    h = jnp.sum(nn.relu(x), axis=(1, 2))
    return ProjectionHead(self.num_classes, spectral_norm=True,
                          kernel_init=SHORTCUT_INIT)(h, labels, train=train)
