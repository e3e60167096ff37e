"""Stride-2 transposed convolutions as four ordinary convolutions.

`nn.ConvTranspose(strides=2, padding="SAME")` calls `lax.conv_transpose`,
which, with flax's default `transpose_kernel=False`, does not flip the
kernel: along each spatial axis it correlates the input x (length n), dilated
by 2 (a zero between neighbours) and padded by (a, k - a) zeros with
a = ceil(k / 2) for a kernel of k >= 2 taps, with the kernel w:

    y[o] = sum_t w[t] * dilated[o + t - a],   o = 0 .. 2n - 1.

dilated[j] is x[j / 2] for even j and zero otherwise, so output o = 2p + r
only meets the taps t with t = a - r (mod 2), at input p + (r + t - a) / 2:

    y[2p + r] = sum_{t = t_r, t_r + 2, ...} w[t] * x[p + (r + t - a) / 2].

Each output phase r in {0, 1} is thus a stride-1 correlation of the
undilated x with every other tap of w, starting at t_r = (a - r) mod 2,
padded by (a - r - t_r) / 2 before. In 2-D the four phases (r, c) use
w[t_r::2, t_c::2], and interleaving them (depth to space) gives y. This is the
same sum, term for term, minus the dilation's zeros; only the summation order,
hence float round-off, differs.

Why bother: on XLA:CPU the weight gradient of the dilated form is very slow
(most of a DCGAN step), while each phase's is an ordinary convolution's.

For a layer with few output features (an image layer: 1 or 3 channels) the
phase convolutions are matrix products one to three columns wide, which
XLA:CPU runs at a few GFLOP/s. There `tap_conv_transpose` sums the same terms
another way: one matrix product gives every tap's contribution
z_t[p] = x[p] w[t] (k*k*out columns), and output phase r adds the shifted
maps z_t[p + (r + t - a) / 2] of its taps. For the MNIST DCGAN's last layer
(14x14x32 to 28x28x1, batch 256), timed alone, this form's forward pass was
12x faster than the phases'; at 8 output features and more the phases were
faster. Its derivative is gathered by hand (`_tap_conv_transpose_backward`):
tap t's share of the cotangent is its phase's cotangent shifted back, and
two matrix products give the input's and the kernel's cotangents. Automatic
differentiation of the shifted sums lost in the whole step (each tap's
cotangent scattered into a zeroed array), and so did the phase
convolutions' derivative, whose one-to-three-column convolutions ran at
4-7 GFLOP/s. Against the latter, the gathered derivative made the DCGAN
step at batch 256 1.11x faster on one core and 1.05x on two (alternating
windows in one process).

The same decomposition serves stride-2 convolutions (`PhaseGradientConv`):
a convolution's derivative with respect to its input is a transposed
convolution of the cotangent with the flipped kernel (input and output
features swapped). XLA computes it as a convolution over the cotangent
dilated by zeros; with "SAME" padding and even input sides it is exactly
`phase_conv_transpose` of the cotangent (a = ceil(k / 2) is then k - 1 minus
the padding before). For the MNIST DCGAN discriminator's second layer this
derivative, three times per step, took 17 ms per call at batch 256 on one
core, against 11-14 ms for the forward convolution.

`PhaseConvTranspose` has nn.ConvTranspose's fields, parameter names, shapes
and initialisation, so the two are interchangeable on the same checkpoint;
`conv_transpose_layer(name)` picks one, by default `gan_jax.backend`'s choice
for the platform (`conv_layer` likewise).
"""

from __future__ import annotations

import itertools
from typing import Optional

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

from gan_jax import backend
from gan_jax.models.batch_norm import broadcast_like
from gan_jax.registry import Registry

# The stride this module decomposes; the phase count per axis.
STRIDE = 2
# Layers with at most this many output features use `tap_conv_transpose`.
MAX_TAP_FORM_FEATURES = 4

CONV_TRANSPOSE_LAYERS: Registry[type[nn.ConvTranspose]] = Registry(
    "conv_transpose implementation")
CONV_LAYERS: Registry[type[nn.Conv]] = Registry("strided conv implementation")


def conv_transpose_layer(name: Optional[str] = None) -> type[nn.ConvTranspose]:
  """The transposed-convolution module a model builds: "xla" is
  nn.ConvTranspose, "phase" the same function as four convolutions; None:
  the backend's choice."""
  return CONV_TRANSPOSE_LAYERS.get(name or backend.kernel_form(backend.CONV_TRANSPOSE))


def conv_layer(name: Optional[str] = None) -> type[nn.Conv]:
  """The strided-convolution module a model builds: "xla" is nn.Conv,
  "phase" the same function with its input derivative as phase convolutions;
  None: the backend's choice."""
  return CONV_LAYERS.get(name or backend.kernel_form(backend.CONV))


def axis_phases(kernel_size: int) -> tuple[tuple[int, tuple[int, int]], ...]:
  """Per output phase r = 0, 1 of one axis: the first kernel tap the phase
  uses (it uses every other one from there) and the (before, after) padding
  of its stride-1 correlation, which keeps the input's length."""
  front = (kernel_size + 1) // 2  # lax's "SAME" padding before the dilated input
  phases = []
  for r in range(STRIDE):
    first = (front - r) % STRIDE
    num_taps = len(range(first, kernel_size, STRIDE))
    before = (front - r - first) // STRIDE
    phases.append((first, (before, num_taps - 1 - before)))
  return tuple(phases)


def _interleave_phases(outputs: list[jax.Array], x_shape: tuple[int, ...]) -> jax.Array:
  """Depth to space: the 2^d phase outputs, in itertools.product order of
  (r_1, ..., r_d), each (batch, *spatial, out), into (batch, *2 spatial, out)."""
  d = len(x_shape) - 2
  y = jnp.reshape(jnp.stack(outputs), (STRIDE,) * d + outputs[0].shape)
  # (r_1..r_d, batch, p_1..p_d, out) -> (batch, p_1, r_1, ..., p_d, r_d, out)
  interleaved = [d, *itertools.chain.from_iterable((d + 1 + i, i) for i in range(d)), 2 * d + 1]
  y = jnp.transpose(y, interleaved)
  return jnp.reshape(y, (x_shape[0], *(STRIDE * n for n in x_shape[1:-1]), y.shape[-1]))


def _tap_placements(window: tuple[int, ...]):
  """Per kernel tap t (itertools.product order): the output phase r it feeds
  along each axis, and the shift s with output[2 p + r] += z_t[p + s]. Along
  an axis tap t meets the input only in the phase with r + t - a even (see the
  module docstring), at s = (r + t - a) / 2."""
  fronts = [(k + 1) // 2 for k in window]  # a, per axis
  placements = []
  for taps in itertools.product(*(range(k) for k in window)):
    phases = tuple((a - t) % STRIDE for t, a in zip(taps, fronts))
    shifts = tuple((r + t - a) // STRIDE for r, t, a in zip(phases, taps, fronts))
    placements.append((taps, phases, shifts))
  return placements


def _shift(x: jax.Array, shifts: tuple[int, ...]) -> jax.Array:
  """out[:, p, :] = x[:, p + s, :] per spatial axis, zero outside x; the same shape."""
  no_padding = (0, 0, 0)
  return lax.pad(x, jnp.zeros((), x.dtype),
                 [no_padding, *((-s, s, 0) for s in shifts), no_padding])


def _tap_products(x: jax.Array, kernel: jax.Array, *, precision=None,
                  preferred_element_type=None) -> jax.Array:
  """z[b, p..., t..., o] = sum_i x[b, p..., i] kernel[t..., i, o]."""
  d = x.ndim - 2
  return lax.dot_general(x, kernel, (((d + 1,), (d,)), ((), ())), precision=precision,
                         preferred_element_type=preferred_element_type)


def tap_conv_transpose(x: jax.Array, kernel: jax.Array, *, precision=None,
                       preferred_element_type=None) -> jax.Array:
  """`phase_conv_transpose` as one matrix product and shifted sums: the form
  for few output features (see the module docstring). Its derivative is
  `_tap_conv_transpose_backward`'s."""
  d = x.ndim - 2
  z = _tap_products(x, kernel, precision=precision,
                    preferred_element_type=preferred_element_type)
  phase_sums = {}
  for taps, phases, shifts in _tap_placements(kernel.shape[:d]):
    shifted = _shift(z[(slice(None),) * (d + 1) + taps], shifts)
    phase_sums[phases] = shifted + phase_sums[phases] if phases in phase_sums else shifted
  return _interleave_phases([phase_sums[phases] for phases in
                             itertools.product(range(STRIDE), repeat=d)], x.shape)


def _tap_conv_transpose_backward(x, kernel, cotangent, *, precision=None):
  """The tap form's derivative, gathered: tap t's share of the cotangent is
  its phase's cotangent shifted back by s, and the matrix product's own
  derivative turns those into the input's and the kernel's. Automatic
  differentiation of the shifted sums instead scatters into a zero array per
  tap, and pairing the tap form with the phase convolutions' derivative runs
  one-to-three-column convolutions: both were slower in the DCGAN step."""
  d = x.ndim - 2
  window = kernel.shape[:d]
  tap_cotangents = []
  for _, phases, shifts in _tap_placements(window):
    phase_cotangent = cotangent[(slice(None),) + tuple(slice(r, None, STRIDE) for r in phases)]
    tap_cotangents.append(_shift(phase_cotangent, tuple(-s for s in shifts)))
  z_cotangent = jnp.stack(tap_cotangents, axis=d + 1)
  z_cotangent = jnp.reshape(z_cotangent, (*x.shape[:d + 1], *window, kernel.shape[-1]))
  # jax.vjp, not hand-written products: under shard_map it also sums the
  # kernel's cotangent over the replicas that share the kernel.
  _, pullback = jax.vjp(lambda x, kernel: _tap_products(x, kernel, precision=precision),
                        x, kernel)
  return pullback(z_cotangent.astype(x.dtype))


def tap_conv_transpose_gathered_backward(x: jax.Array, kernel: jax.Array, *, precision=None,
                                         preferred_element_type=None) -> jax.Array:
  """`tap_conv_transpose`, differentiated by `_tap_conv_transpose_backward`."""

  @jax.custom_vjp
  def conv_transpose(x, kernel):
    return tap_conv_transpose(x, kernel, precision=precision,
                              preferred_element_type=preferred_element_type)

  def forward(x, kernel):
    return conv_transpose(x, kernel), (x, kernel)

  def backward(residuals, cotangent):
    x, kernel = residuals
    dx, dkernel = _tap_conv_transpose_backward(x, kernel, cotangent, precision=precision)
    return dx.astype(x.dtype), dkernel.astype(kernel.dtype)

  conv_transpose.defvjp(forward, backward)
  return conv_transpose(x, kernel)


def phase_conv_transpose(x: jax.Array, kernel: jax.Array, *, precision=None,
                         preferred_element_type=None) -> jax.Array:
  """`lax.conv_transpose(x, kernel, (2,) * d, "SAME")` with an unflipped kernel,
  for x (batch, *spatial, in) and kernel (*window, in, out), every window
  side >= 2 (d spatial axes)."""
  d = x.ndim - 2
  channels_last = (0, d + 1, *range(1, d + 1))
  dimension_numbers = lax.ConvDimensionNumbers(
      lhs_spec=channels_last, rhs_spec=(d + 1, d, *range(d)), out_spec=channels_last)
  outputs = []
  # Phase (r_1, ..., r_d) holds y[:, 2 p_1 + r_1, ..., 2 p_d + r_d, :].
  for phases in itertools.product(*(axis_phases(k) for k in kernel.shape[:d])):
    sub_kernel = kernel[tuple(slice(first, None, STRIDE) for first, _ in phases)]
    outputs.append(lax.conv_general_dilated(
        x, sub_kernel, (1,) * d, [padding for _, padding in phases],
        dimension_numbers=dimension_numbers, precision=precision,
        preferred_element_type=preferred_element_type))
  return _interleave_phases(outputs, x.shape)


def _conv_transpose_form(features: int):
  """The transposed-convolution computation for `features` output features."""
  return (tap_conv_transpose_gathered_backward if features <= MAX_TAP_FORM_FEATURES
          else phase_conv_transpose)


def _per_axis(value, num_axes: int) -> tuple[int, ...]:
  value = 1 if value is None else value  # None means 1, as in flax's layers
  return (value,) * num_axes if isinstance(value, int) else tuple(value)


def _kernel_size(module: nn.Module) -> tuple[int, ...]:
  size = module.kernel_size
  return (size,) if isinstance(size, int) else tuple(size)


def _flat_input_and_parameters(module: nn.Module, inputs: jax.Array, kernel_size):
  """What flax's Conv and ConvTranspose do before convolving: leading batch
  axes flattened into one, the kernel and bias created in their order (so the
  same key initialises both alike), dtypes promoted. Returns (batch_shape, x,
  kernel, bias); bias is None without one."""
  batch_shape = inputs.shape[:inputs.ndim - len(kernel_size) - 1]
  x = jnp.reshape(inputs, (-1, *inputs.shape[len(batch_shape):]))
  kernel = module.param("kernel", module.kernel_init,
                        kernel_size + (x.shape[-1], module.features), module.param_dtype)
  bias = (module.param("bias", module.bias_init, (module.features,), module.param_dtype)
          if module.use_bias else None)
  x, kernel, bias = module.promote_dtype(x, kernel, bias, dtype=module.dtype)
  return batch_shape, x, kernel, bias


class PhaseConvTranspose(nn.ConvTranspose):
  """nn.ConvTranspose, computed by `phase_conv_transpose` (or, for at most
  MAX_TAP_FORM_FEATURES features, `tap_conv_transpose_gathered_backward`) where that applies:
  stride 2 on every axis, "SAME" padding, no kernel dilation or mask, an
  unflipped kernel (transpose_kernel=False) of side >= 2. Any other setting
  runs nn.ConvTranspose's own computation."""

  def _decomposable(self, kernel_size: tuple[int, ...]) -> bool:
    d = len(kernel_size)
    return (_per_axis(self.strides, d) == (STRIDE,) * d
            and isinstance(self.padding, str) and self.padding == "SAME"
            and _per_axis(self.kernel_dilation, d) == (1,) * d
            and self.mask is None and not self.transpose_kernel
            and min(kernel_size) >= 2)

  @nn.compact
  def __call__(self, inputs: jax.Array) -> jax.Array:
    kernel_size = _kernel_size(self)
    if not self._decomposable(kernel_size):
      return super().__call__(inputs)
    batch_shape, x, kernel, bias = _flat_input_and_parameters(self, inputs, kernel_size)
    y = _conv_transpose_form(self.features)(
        x, kernel, precision=self.precision,
        preferred_element_type=self.preferred_element_type)
    if bias is not None:
      y = y + bias
    return jnp.reshape(y, (*batch_shape, *y.shape[1:]))


def shifted_sum_strided_conv(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """`lax.conv_general_dilated(x, kernel, (2,) * d, "SAME")`, channels last,
  for even input sides, as a sum over kernel taps and input channels of
  strided slices of the padded input times the tap's kernel row: the same
  terms, summed in float32 at least, in another order."""
  d = x.ndim - 2
  window = kernel.shape[:d]
  out_sides = [side // STRIDE for side in x.shape[1:-1]]
  padded = jnp.pad(x, [(0, 0), *(((k - STRIDE) // 2, k - STRIDE - (k - STRIDE) // 2)
                                 for k in window), (0, 0)])
  accumulate = jnp.promote_types(x.dtype, jnp.float32)
  total = None
  for taps in itertools.product(*(range(k) for k in window)):
    rows = padded[(slice(None),) + tuple(slice(t, t + STRIDE * (n - 1) + 1, STRIDE)
                                         for t, n in zip(taps, out_sides))]
    for channel in range(x.shape[-1]):
      term = (rows[..., channel:channel + 1].astype(accumulate)
              * kernel[taps + (channel,)].astype(accumulate))
      total = term if total is None else total + term
  return total.astype(jnp.result_type(x.dtype, kernel.dtype))


def strided_conv_phase_gradient(x: jax.Array, kernel: jax.Array, *, precision=None,
                                preferred_element_type=None) -> jax.Array:
  """`lax.conv_general_dilated(x, kernel, (2,) * d, "SAME")`, channels last,
  for even input sides and window sides >= 2. Its derivative with respect to
  x is the transposed convolution of the cotangent with the flipped kernel,
  computed by `phase_conv_transpose` (or the tap form for at most
  MAX_TAP_FORM_FEATURES input features); with respect to the kernel it is
  XLA's own."""
  d = x.ndim - 2
  channels_last = (0, d + 1, *range(1, d + 1))
  dimension_numbers = lax.ConvDimensionNumbers(
      lhs_spec=channels_last, rhs_spec=(d + 1, d, *range(d)), out_spec=channels_last)
  options = dict(precision=precision, preferred_element_type=preferred_element_type)

  def convolve(x, kernel):
    return lax.conv_general_dilated(x, kernel, (STRIDE,) * d, "SAME",
                                    dimension_numbers=dimension_numbers, **options)

  # A few input channels make XLA:CPU's convolution a matrix product a few
  # columns deep; summing shifted strided slices, one fused loop, was 6x
  # faster for the MNIST DCGAN's first layer (28x28x1 to 14x14x32, batch 256).
  value = (shifted_sum_strided_conv if x.shape[-1] <= MAX_TAP_FORM_FEATURES
           and preferred_element_type is None else convolve)

  @jax.custom_vjp
  def conv(x, kernel):
    return value(x, kernel)

  def forward(x, kernel):
    return value(x, kernel), (x, kernel)

  def backward(residuals, cotangent):
    x, kernel = residuals
    # jax.vjp sums the kernel's cotangent over the replicas sharing it (shard_map).
    _, kernel_pullback = jax.vjp(lambda kernel: convolve(x, kernel), kernel)
    (dkernel,) = kernel_pullback(cotangent)
    flipped = jnp.swapaxes(jnp.flip(kernel, tuple(range(d))), d, d + 1)
    dx = _conv_transpose_form(x.shape[-1])(cotangent, flipped.astype(cotangent.dtype),
                                           precision=precision)
    return dx.astype(x.dtype), dkernel.astype(kernel.dtype)

  conv.defvjp(forward, backward)
  return conv(x, kernel)


class PhaseGradientConv(nn.Conv):
  """nn.Conv whose input derivative is `phase_conv_transpose`'s (see
  `strided_conv_phase_gradient`) where that is exact: stride 2 on every axis,
  "SAME" padding, even input sides, no dilation, grouping or mask, window
  sides >= 2, no custom convolution function. Any other setting runs
  nn.Conv's own computation. The same parameters, names and initialisation
  as nn.Conv."""

  def _decomposable(self, kernel_size: tuple[int, ...], spatial_shape) -> bool:
    d = len(kernel_size)
    return (_per_axis(self.strides, d) == (STRIDE,) * d
            and isinstance(self.padding, str) and self.padding == "SAME"
            and all(side % STRIDE == 0 for side in spatial_shape)
            and _per_axis(self.input_dilation, d) == (1,) * d
            and _per_axis(self.kernel_dilation, d) == (1,) * d
            and self.feature_group_count == 1 and self.mask is None
            and self.conv_general_dilated is None and self.conv_general_dilated_cls is None
            and min(kernel_size) >= 2)

  @nn.compact
  def __call__(self, inputs: jax.Array) -> jax.Array:
    kernel_size = _kernel_size(self)
    d = len(kernel_size)
    if inputs.ndim < d + 1 or not self._decomposable(kernel_size, inputs.shape[-d - 1:-1]):
      return super().__call__(inputs)
    batch_shape, x, kernel, bias = _flat_input_and_parameters(self, inputs, kernel_size)
    y = strided_conv_phase_gradient(x, kernel, precision=self.precision)
    if bias is not None:
      # Its gradient a matrix-vector product: XLA:CPU made the (N, H, W)
      # reduction a reduce-window tree, 3-4 ms per call at batch 256.
      y = y + broadcast_like(bias, y)
    return jnp.reshape(y, (*batch_shape, *y.shape[1:]))


# Flax names an unnamed submodule after its class ("ConvTranspose_0"), and the
# name is both the parameter path and what the init key is folded with; the
# shared name makes the two layers' checkpoints and initialisations identical.
PhaseConvTranspose.__name__ = "ConvTranspose"

PhaseGradientConv.__name__ = "Conv"  # likewise "Conv_0", as nn.Conv's

CONV_TRANSPOSE_LAYERS.register("xla")(nn.ConvTranspose)
CONV_TRANSPOSE_LAYERS.register("phase")(PhaseConvTranspose)
CONV_LAYERS.register("xla")(nn.Conv)
CONV_LAYERS.register("phase")(PhaseGradientConv)
