"""Building blocks shared by the image architectures.

* Spectral normalisation (Miyato et al. 2018): `SNDense`, `SNConv` and
  `SNEmbed` divide their weight by an estimate of its largest singular value.
  The estimate comes from power iteration (one step per call by default),
  warm-started from a vector `u` kept in the "spectral_norm" collection.
  Training-mode calls store the refined `u`; evaluation-mode calls run the
  same step but leave `u` untouched, so both modes give the same output.
  (Not `flax.linen.SpectralNorm`: at init it writes the normalised kernel
  back into the params, silently rescaling the initial weights.)
* `ConditionalBatchNorm`: batch norm with a gain and bias per class, moments
  averaged over `axis_name` (the whole global batch, all classes together).
* `ProjectionHead`: the projection discriminator's output (Miyato & Koyama
  2018), logit = psi(h) + <embed(y), h>.
* `minibatch_stddev`: StyleGAN's (Karras et al. 2018) extra feature map, the
  spread of features across a small group of examples, which lets D see a
  batch that lacks variety.
"""

from __future__ import annotations

from typing import Any, Callable, Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
from flax.linen.dtypes import promote_dtype
from jax import lax

from gan_jax.models.batch_norm import BatchNorm, broadcast_like
from gan_jax.precision import BOUNDARY_DTYPE
from gan_jax.registry import ConfigError
from gan_jax.sharding import DATA_AXIS

Initializer = Callable[..., Any]

# Where the power-iteration vectors live; Player.apply makes every collection
# other than "params" mutable in training mode, so no caller needs to name it.
SPECTRAL_NORM = "spectral_norm"


def require_labels(labels, num_classes: int, model: str) -> None:
  """Fails clearly when a conditional model is called without labels."""
  if num_classes and labels is None:
    raise ConfigError(
        f"{model} is conditional (num_classes={num_classes}) and needs class labels, "
        "but was called with labels=None; pass integer labels of shape (batch,), "
        "or set num_classes=0 for an unconditional model.")


def _unit(v: jax.Array, epsilon: float) -> jax.Array:
  return v / jnp.maximum(jnp.linalg.norm(v), epsilon)


def spectral_normalize(module: nn.Module, weight: jax.Array, *, train: bool,
                       power_iterations: int = 1, epsilon: float = 1e-12) -> jax.Array:
  """`weight` divided by its estimated largest singular value.

  The weight is read as a (fan_in, fan_out) matrix: a conv kernel (kh, kw, in,
  out) as (kh * kw * in, out), as in Miyato et al. Must be called from inside
  `module`'s compact method, once per weight; `u` is stored under the name "u".
  """
  matrix = jnp.reshape(weight, (-1, weight.shape[-1]))
  u_var = module.variable(
      SPECTRAL_NORM, "u",
      lambda: _unit(jax.random.normal(module.make_rng("params"), (matrix.shape[1],)),
                    epsilon))
  u = u_var.value
  for _ in range(power_iterations):
    v = _unit(matrix @ u, epsilon)
    u = _unit(matrix.T @ v, epsilon)
  u = lax.stop_gradient(u)
  # ||W u|| = v^T W u for v = W u / ||W u||, and its gradient is v u^T: the
  # paper's sigma, differentiated with u and v held constant.
  sigma = jnp.linalg.norm(matrix @ u)
  if train:
    u_var.value = u
  # sigma is float32 (u is); keep the weight's own (compute) dtype.
  return (weight / jnp.maximum(sigma, epsilon)).astype(weight.dtype)


class SNDense(nn.Module):
  features: int
  use_bias: bool = True
  kernel_init: Initializer = nn.initializers.lecun_normal()
  power_iterations: int = 1
  dtype: Optional[Any] = None  # compute dtype (gan_jax.precision)

  @nn.compact
  def __call__(self, x, *, train: bool):
    kernel = self.param("kernel", self.kernel_init, (x.shape[-1], self.features))
    kernel = spectral_normalize(self, kernel, train=train,
                                power_iterations=self.power_iterations)
    bias = self.param("bias", nn.initializers.zeros, (self.features,)) if self.use_bias else None
    x, kernel, bias = promote_dtype(x, kernel, bias, dtype=self.dtype)
    y = x @ kernel
    return y if bias is None else y + bias


class SNConv(nn.Module):
  """2-D convolution on NHWC inputs with a spectrally normalised kernel."""

  features: int
  kernel_size: Sequence[int] = (3, 3)
  strides: int = 1
  padding: str = "SAME"
  use_bias: bool = True
  kernel_init: Initializer = nn.initializers.lecun_normal()
  power_iterations: int = 1
  dtype: Optional[Any] = None  # compute dtype (gan_jax.precision)

  @nn.compact
  def __call__(self, x, *, train: bool):
    kernel = self.param("kernel", self.kernel_init,
                        (*self.kernel_size, x.shape[-1], self.features))
    kernel = spectral_normalize(self, kernel, train=train,
                                power_iterations=self.power_iterations)
    bias = self.param("bias", nn.initializers.zeros, (self.features,)) if self.use_bias else None
    x, kernel, bias = promote_dtype(x, kernel, bias, dtype=self.dtype)
    y = lax.conv_general_dilated(x, kernel, (self.strides, self.strides), self.padding,
                                 dimension_numbers=("NHWC", "HWIO", "NHWC"))
    return y if bias is None else y + bias


class SNEmbed(nn.Module):
  """A label embedding whose (num_embeddings, features) table is normalised."""

  num_embeddings: int
  features: int
  embedding_init: Initializer = nn.initializers.xavier_uniform()
  power_iterations: int = 1

  @nn.compact
  def __call__(self, labels, *, train: bool):
    table = self.param("embedding", self.embedding_init,
                       (self.num_embeddings, self.features))
    table = spectral_normalize(self, table, train=train,
                               power_iterations=self.power_iterations)
    return table[labels]


class ConditionalBatchNorm(nn.Module):
  """Batch norm whose affine gain and bias are looked up by class label.

  Conditional batch norm (de Vries et al. 2017; Miyato & Koyama 2018). The
  moments are shared by all classes and, through `axis_name`, by all replicas;
  only the affine transform depends on the label. With num_classes=0 there is
  one gain and bias for every example, i.e. ordinary batch norm.
  """

  num_classes: int = 0
  momentum: float = 0.99
  epsilon: float = 1e-5
  gain_init: Initializer = nn.initializers.ones
  axis_name: Optional[str] = DATA_AXIS
  dtype: Optional[Any] = None  # compute dtype (gan_jax.precision)

  @nn.compact
  def __call__(self, x, labels=None, *, train: bool):
    require_labels(labels, self.num_classes, "ConditionalBatchNorm")
    x = BatchNorm(use_running_average=not train, use_scale=False, use_bias=False,
                  momentum=self.momentum, epsilon=self.epsilon,
                  axis_name=self.axis_name, dtype=self.dtype)(x)
    features = x.shape[-1]
    rows = max(self.num_classes, 1)
    gain = self.param("gain", self.gain_init, (rows, features))
    bias = self.param("bias", nn.initializers.zeros, (rows, features))
    x, gain, bias = promote_dtype(x, gain, bias, dtype=self.dtype)
    if not self.num_classes:
      return x * broadcast_like(gain[0], x) + broadcast_like(bias[0], x)
    per_example = (x.shape[0],) + (1,) * (x.ndim - 2) + (features,)
    return (x * jnp.reshape(gain[labels], per_example)
            + jnp.reshape(bias[labels], per_example))


class ProjectionHead(nn.Module):
  """logit = psi(h) + <embed(y), h> on pooled features h of shape (B, F).

  The projection discriminator (Miyato & Koyama 2018); with num_classes=0 only
  the linear psi(h) remains. `spectral_norm` normalises psi and the embedding.
  The logit is precision-critical: it computes in float32 (gan_jax.precision).
  """

  num_classes: int = 0
  spectral_norm: bool = False
  kernel_init: Initializer = nn.initializers.xavier_uniform()

  @nn.compact
  def __call__(self, h, labels=None, *, train: bool):
    require_labels(labels, self.num_classes, "ProjectionHead")
    h = h.astype(BOUNDARY_DTYPE)
    if self.spectral_norm:
      logit = SNDense(1, kernel_init=self.kernel_init)(h, train=train)[:, 0]
    else:
      logit = nn.Dense(1, kernel_init=self.kernel_init)(h)[:, 0]
    if not self.num_classes:
      return logit
    if self.spectral_norm:
      embedding = SNEmbed(self.num_classes, h.shape[-1])(labels, train=train)
    else:
      embedding = nn.Embed(self.num_classes, h.shape[-1],
                           embedding_init=nn.initializers.xavier_uniform())(labels)
    return logit + jnp.sum(embedding * h, axis=-1)


def minibatch_stddev(x: jax.Array, group_size: int) -> jax.Array:
  """Appends one channel to NHWC `x`: per group of `group_size` consecutive
  examples, the standard deviation of each feature over the group, averaged
  over features and positions, broadcast to every example and position.
  Groups are local to a replica (as in StyleGAN), so a sharded batch gives
  the same result as one device when each replica holds whole groups."""
  batch = x.shape[0]
  group = min(group_size, batch)
  if batch % group:
    raise ConfigError(f"minibatch_stddev groups {group_size} examples, which must divide "
                      f"the per-replica batch of D ({batch}).")
  groups = jnp.reshape(x.astype(jnp.float32), (batch // group, group, *x.shape[1:]))
  spread = jnp.sqrt(jnp.var(groups, axis=1) + 1e-8)  # (batch // group, H, W, C)
  feature = jnp.mean(spread, axis=(1, 2, 3))  # one number per group
  feature = jnp.broadcast_to(jnp.repeat(feature, group)[:, None, None, None],
                             (*x.shape[:3], 1))
  return jnp.concatenate([x, feature.astype(x.dtype)], axis=-1)
