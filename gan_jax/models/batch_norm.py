"""Batch norm with its per-channel sums done as matrix-vector products.

`BatchNorm` is `flax.linen.BatchNorm`'s function (fast variance E[x²] - E[x]²,
clipped at 0; moments in float32, averaged over `axis_name`; running averages
with `momentum`) with the same variables, so it is a drop-in replacement with
interchangeable checkpoints. tests/test_batch_norm.py checks outputs, running
statistics and every gradient against flax's layer.

Why, on XLA:CPU: a sum over the batch and spatial axes of an (N, H, W, C)
tensor, and the transpose of a per-channel broadcast in the backward pass,
become trees of reduce-window ops, which took 28% of the DCGAN step at batch
256 (with XLA's own convolution kernels). As ones(rows) @ x(rows, C) the same
sums are matrix-vector products. On other backends the layer uses plain
reductions. Either way the per-channel vectors are marked varying over the
shard_map axis before they are broadcast (`varying_like`); a broadcast of a
replicated vector is replicated, and the transpose of combining it with the
varying activation would all-reduce an activation-sized cotangent instead of
C numbers.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax


def _rows(x: jax.Array) -> jax.Array:
  return jnp.reshape(x, (-1, x.shape[-1]))


def _matvec_channel_sum(x: jax.Array) -> jax.Array:
  """Sum over every axis but the last, as a matrix-vector product. HIGHEST
  precision keeps it an exact-float32 accumulation wherever dots could
  otherwise round their inputs (TF32 on GPUs)."""
  rows = _rows(x)
  return jnp.dot(jnp.ones((rows.shape[0],), rows.dtype), rows,
                 precision=lax.Precision.HIGHEST)


def channel_sum(x: jax.Array) -> jax.Array:
  """(..., C) -> (C,): the sum over all leading axes, as a matrix-vector
  product whose gradient is a broadcast."""
  return _channel_sum(x, x.shape, jnp.dtype(x.dtype))


@functools.partial(jax.custom_vjp, nondiff_argnums=(1, 2))
def _channel_sum(x, shape, dtype):
  del shape, dtype
  return _matvec_channel_sum(x)


def _channel_sum_fwd(x, shape, dtype):
  del shape, dtype
  return _matvec_channel_sum(x), None


def _channel_sum_bwd(shape, dtype, _, g):
  return (jnp.broadcast_to(g.astype(dtype), shape),)


_channel_sum.defvjp(_channel_sum_fwd, _channel_sum_bwd)


@functools.partial(jax.custom_vjp, nondiff_argnums=(1,))
def broadcast_channels(v: jax.Array, shape: tuple[int, ...]) -> jax.Array:
  """(C,) -> `shape` (..., C); its transpose is `channel_sum`'s product."""
  return jnp.broadcast_to(v, shape)


def _broadcast_fwd(v, shape):
  return jnp.broadcast_to(v, shape), None


def _broadcast_bwd(shape, _, g):
  return (_matvec_channel_sum(g),)


broadcast_channels.defvjp(_broadcast_fwd, _broadcast_bwd)


def use_matvec_sums() -> bool:
  """Whether channel sums go through matrix-vector products: on XLA:CPU."""
  return jax.default_backend() == "cpu"


def spread_channels(v: jax.Array, shape: tuple[int, ...],
                    matvec: Optional[bool] = None) -> jax.Array:
  """`v` (C,) broadcast to `shape` (..., C); on XLA:CPU (or with matvec=True)
  its gradient is a matrix-vector product instead of a reduction."""
  matvec = use_matvec_sums() if matvec is None else matvec
  return broadcast_channels(v, shape) if matvec else jnp.broadcast_to(v, shape)


def broadcast_like(v: jax.Array, x: jax.Array, matvec: Optional[bool] = None) -> jax.Array:
  """`v` (C,) broadcast to `x`'s shape, varying like `x` (`spread_channels`
  of `varying_like`)."""
  return spread_channels(varying_like(v, x), x.shape, matvec)


def varying_like(v: jax.Array, x: jax.Array) -> jax.Array:
  """`v` marked as varying over the shard_map axes `x` varies over, so that
  the backward pass all-reduces the (C,) vector, not its broadcast."""
  missing = tuple(sorted(set(jax.typeof(x).mat.varying) - set(jax.typeof(v).mat.varying)))
  return lax.pcast(v, missing, to="varying") if missing else v


class BatchNorm(nn.Module):
  """Batch norm over the last (feature) axis; see the module docstring.

  Same attributes and defaults as `flax.linen.BatchNorm` for the ones this
  codebase uses (feature axis -1, fast variance, float32 moments).
  """
  use_running_average: Optional[bool] = None
  momentum: float = 0.99
  epsilon: float = 1e-5
  use_bias: bool = True
  use_scale: bool = True
  bias_init: Callable[..., Any] = nn.initializers.zeros
  scale_init: Callable[..., Any] = nn.initializers.ones
  axis_name: Optional[str] = None
  matvec_sums: Optional[bool] = None  # None: on XLA:CPU only
  dtype: Optional[Any] = None  # output dtype; None: promoted from x, scale and bias

  @nn.compact
  def __call__(self, x: jax.Array, use_running_average: Optional[bool] = None) -> jax.Array:
    use_running_average = nn.merge_param("use_running_average", self.use_running_average,
                                         use_running_average)
    matvec = use_matvec_sums() if self.matvec_sums is None else self.matvec_sums
    features = x.shape[-1]
    ra_mean = self.variable("batch_stats", "mean", lambda: jnp.zeros((features,), jnp.float32))
    ra_var = self.variable("batch_stats", "var", lambda: jnp.ones((features,), jnp.float32))

    total = channel_sum if matvec else (lambda a: jnp.sum(_rows(a), axis=0))

    if use_running_average:
      mean, var = ra_mean.value, ra_var.value
    else:
      x32 = x.astype(jnp.promote_types(x.dtype, jnp.float32))
      count = x32.size // features
      moments = jnp.stack([total(x32), total(lax.square(x32))]) / count
      if self.axis_name is not None and not self.is_initializing():
        moments = lax.pmean(moments, self.axis_name)
      mean, mean_square = moments[0], moments[1]
      var = jnp.maximum(0.0, mean_square - lax.square(mean))
      if not self.is_initializing():
        ra_mean.value = self.momentum * ra_mean.value + (1 - self.momentum) * mean
        ra_var.value = self.momentum * ra_var.value + (1 - self.momentum) * var

    multiplier = lax.rsqrt(var + self.epsilon)
    dtype_args = [x]
    if self.use_scale:
      scale = self.param("scale", self.scale_init, (features,), jnp.float32)
      multiplier = multiplier * scale
      dtype_args.append(scale)
    y = (x - broadcast_like(mean, x, matvec)) * broadcast_like(multiplier, x, matvec)
    if self.use_bias:
      bias = self.param("bias", self.bias_init, (features,), jnp.float32)
      y = y + broadcast_like(bias, x, matvec)
      dtype_args.append(bias)
    return y.astype(self.dtype or jnp.result_type(*dtype_args))
