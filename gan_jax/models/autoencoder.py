"""Encoders and decoders for the autoencoder family, registered by name.

An encoder maps examples (batch, *data_shape) to a code (batch, latent_dim);
a variational one returns the Gaussian posterior's (mean, log_variance)
instead, each (batch, latent_dim). A decoder maps codes to one raw output per
data value, shape (batch, *output_shape): logits for a Bernoulli likelihood,
means for a Gaussian one. `AutoencoderModel` holds one encoder and one
decoder, so that a single parameter tree (and optimizer) covers both.
"""

from __future__ import annotations

import math
from typing import Any, Optional, Sequence

import flax.linen as nn
import jax.numpy as jnp

from gan_jax.models.transposed_conv import conv_transpose_layer
from gan_jax.precision import BOUNDARY_DTYPE
from gan_jax.registry import ConfigError, Registry

ENCODERS: Registry[type[nn.Module]] = Registry("encoder")
DECODERS: Registry[type[nn.Module]] = Registry("decoder")

OBSERVATION_LOG_VARIANCE = "observation_log_variance"


class _LatentHeads(nn.Module):
  """The encoder's last layer: a code, or a posterior's mean and log-variance.
  Precision-critical (the KL and the sampled code read it): float32."""
  latent_dim: int
  variational: bool

  @nn.compact
  def __call__(self, h):
    dense = lambda name: nn.Dense(self.latent_dim, name=name, dtype=BOUNDARY_DTYPE)
    if not self.variational:
      return dense("code")(h)
    return dense("mean")(h), dense("log_variance")(h)


@ENCODERS.register("mlp")
class MLPEncoder(nn.Module):
  latent_dim: int
  variational: bool
  hidden_units: int = 512
  num_hidden_layers: int = 2
  dtype: Optional[Any] = None  # hidden layers' compute dtype (gan_jax.precision)

  @nn.compact
  def __call__(self, x):
    h = jnp.reshape(x, (x.shape[0], -1))
    for i in range(self.num_hidden_layers):
      dtype = BOUNDARY_DTYPE if i == 0 else self.dtype  # the input layer: float32
      h = nn.relu(nn.Dense(self.hidden_units, dtype=dtype)(h))
    return _LatentHeads(self.latent_dim, self.variational, name="latent")(h)


@DECODERS.register("mlp")
class MLPDecoder(nn.Module):
  output_shape: Sequence[int]
  hidden_units: int = 512
  num_hidden_layers: int = 2
  dtype: Optional[Any] = None  # hidden layers' compute dtype (gan_jax.precision)

  @nn.compact
  def __call__(self, z):
    h = z
    for _ in range(self.num_hidden_layers):
      h = nn.relu(nn.Dense(self.hidden_units, dtype=self.dtype)(h))
    h = nn.Dense(math.prod(self.output_shape), dtype=BOUNDARY_DTYPE)(h)
    return jnp.reshape(h, (z.shape[0], *self.output_shape))


@ENCODERS.register("conv")
class ConvEncoder(nn.Module):
  """Stride-2 convolutions (each halves H and W), then dense layers."""
  latent_dim: int
  variational: bool
  features: Sequence[int] = (32, 64)
  kernel_size: int = 3
  hidden_units: int = 256  # 0: the latent heads read the flattened features
  dtype: Optional[Any] = None  # hidden layers' compute dtype (gan_jax.precision)

  @nn.compact
  def __call__(self, x):
    if x.ndim != 4:
      raise ConfigError(f"The conv encoder needs images (H, W, C); got examples of "
                        f"shape {x.shape[1:]}. Use the mlp encoder.")
    h = x
    for i, width in enumerate(self.features):
      dtype = BOUNDARY_DTYPE if i == 0 else self.dtype  # the input layer: float32
      h = nn.Conv(width, (self.kernel_size,) * 2, strides=2, padding="SAME", dtype=dtype)(h)
      h = nn.relu(h)
    h = jnp.reshape(h, (h.shape[0], -1))
    if self.hidden_units:
      h = nn.relu(nn.Dense(self.hidden_units, dtype=self.dtype)(h))
    return _LatentHeads(self.latent_dim, self.variational, name="latent")(h)


@DECODERS.register("conv")
class ConvDecoder(nn.Module):
  """The conv encoder's mirror: dense layers to a (H/2^n, W/2^n) feature map
  with `features[-1]` channels, then n stride-2 transposed convolutions
  through the reversed `features` down to the data's channels."""
  output_shape: Sequence[int]
  features: Sequence[int] = (32, 64)
  kernel_size: int = 3
  hidden_units: int = 256  # 0: one dense layer from z to the feature map
  # "xla" or "phase", the same function (transposed_conv); None: the
  # backend's choice (gan_jax.backend), never config.
  conv_transpose: Optional[str] = None
  dtype: Optional[Any] = None  # hidden layers' compute dtype (gan_jax.precision)

  @nn.compact
  def __call__(self, z):
    if len(self.output_shape) != 3:
      raise ConfigError(f"The conv decoder needs images (H, W, C); got examples of "
                        f"shape {tuple(self.output_shape)}. Use the mlp decoder.")
    height, width, channels = self.output_shape
    scale = 2 ** len(self.features)
    if height % scale or width % scale:
      raise ConfigError(
          f"The conv decoder upsamples by 2^{len(self.features)} = {scale}, which does "
          f"not divide the image size {height}x{width}; use fewer `features`.")
    h = z
    if self.hidden_units:
      h = nn.relu(nn.Dense(self.hidden_units, dtype=self.dtype)(h))
    h = nn.relu(nn.Dense((height // scale) * (width // scale) * self.features[-1],
                         dtype=self.dtype)(h))
    h = jnp.reshape(h, (z.shape[0], height // scale, width // scale, self.features[-1]))
    widths = [*reversed(self.features[:-1]), channels]
    for i, out in enumerate(widths):
      last = i == len(widths) - 1  # the output layer: float32
      h = conv_transpose_layer(self.conv_transpose)(
          out, (self.kernel_size,) * 2, strides=(2, 2), padding="SAME",
          dtype=BOUNDARY_DTYPE if last else self.dtype)(h)
      if not last:
        h = nn.relu(h)
    return h


class AutoencoderModel(nn.Module):
  """An encoder and a decoder under one parameter tree, plus the Gaussian
  likelihood's scalar log-variance when it is learned."""
  encoder: nn.Module
  decoder: nn.Module
  initial_log_variance: Optional[float] = None  # None: no learned variance

  def setup(self):
    if self.initial_log_variance is not None:
      self.param(OBSERVATION_LOG_VARIANCE,
                 nn.initializers.constant(self.initial_log_variance), ())

  def encode(self, x):
    return self.encoder(x)

  def decode(self, z):
    return self.decoder(z)

  def __call__(self, x):
    """Decodes the code (or posterior mean); used to initialise every part."""
    code = self.encode(x)
    return self.decode(code[0] if isinstance(code, tuple) else code)
