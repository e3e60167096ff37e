"""The FID Inception-v3 in Flax: 2048-d pool3 features of the original TF FID
network, the extractor behind standard FID and KID numbers.

The graph follows the TorchScript archive `evaluation.inception_weights`
converts, module for module and under the same names: a stem of five
convolutions and two max pools, then Inception blocks A A A B C C C C D E E
and an 8x8 average pool. The FID variants of the blocks, which differ from
torchvision's Inception-v3, are kept: the average pools inside the blocks
leave the padding out of their counts, and the last E block pools its fourth
branch with a 3x3 max pool instead. Every convolution is followed by a batch
norm without scale (epsilon 1e-3) and a ReLU; `convert_params` folds the
norm into the kernel and a bias once, when the weights are loaded.

Input. The network takes 299x299x3 images with values (x - 128) / 128 for
8-bit x. `features` gets there from images of any size and value range the
way the original TF FID code (TTUR) and StyleGAN's metrics feed their graph:
grey images are replicated to three channels, values are mapped to 0..255
and rounded to 8 bits (what saving a generated image as PNG does), and the
images are resized with TF 1's bilinear resize (align_corners=False,
half_pixel_centers=False: sampling at x * in / out). The resize is part of the
metric, so `RESIZE` names it in every report.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from gan_jax import step as step_lib
from gan_jax.evaluation import inception_weights
from gan_jax.sharding import DATA_AXIS, make_mesh, replicated

INPUT_SIZE = 299
FEATURE_DIM = 2048
BATCH_NORM_EPSILON = 1e-3
RESIZE = "tf1_bilinear(align_corners=False,half_pixel_centers=False) to 299x299 after uint8 rounding"
# A convolution: (output channels, kernel (h, w), stride, "same" or "valid").
ConvSpec = tuple[int, tuple[int, int], int, str]


def _spec(out: int, kernel, stride: int = 1, padding: str = "same") -> ConvSpec:
  kernel = (kernel, kernel) if isinstance(kernel, int) else tuple(kernel)
  return (out, kernel, stride, padding)


class ConvBlock(nn.Module):
  """Convolution with the batch norm folded in (kernel and bias), then ReLU.
  "same" pads (k - 1) / 2 on each side, as the archive's explicit paddings."""

  features: int
  kernel: tuple[int, int]
  stride: int = 1
  padding: str = "same"

  @nn.compact
  def __call__(self, x):
    kernel = self.param("kernel", nn.initializers.lecun_normal(),
                        (*self.kernel, x.shape[-1], self.features))
    bias = self.param("bias", nn.initializers.zeros, (self.features,))
    pads = ([(0, 0)] * 2 if self.padding == "valid"
            else [((k - 1) // 2, (k - 1) // 2) for k in self.kernel])
    y = jax.lax.conv_general_dilated(x, kernel, (self.stride,) * 2, pads,
                                     dimension_numbers=("NHWC", "HWIO", "NHWC"))
    return nn.relu(y + bias)


def _average_pool_3x3(x):
  return nn.avg_pool(x, (3, 3), strides=(1, 1), padding=((1, 1), (1, 1)),
                     count_include_pad=False)


def _max_pool_3x3_stride_2(x):
  return nn.max_pool(x, (3, 3), strides=(2, 2))


class Tower(nn.Module):
  """Convolutions in sequence (named conv, conv_1, ...), after an optional
  3x3 average pool."""

  specs: Sequence[ConvSpec]
  pool_first: bool = False

  @nn.compact
  def __call__(self, x):
    if self.pool_first:
      x = _average_pool_3x3(x)
    for index, spec in enumerate(self.specs):
      x = ConvBlock(*spec, name="conv" if index == 0 else f"conv_{index}")(x)
    return x


class InceptionA(nn.Module):
  pool_features: int

  @nn.compact
  def __call__(self, x):
    return jnp.concatenate([
        ConvBlock(64, (1, 1), name="conv")(x),
        Tower((_spec(48, 1), _spec(64, 5)), name="tower")(x),
        Tower((_spec(64, 1), _spec(96, 3), _spec(96, 3)), name="tower_1")(x),
        Tower((_spec(self.pool_features, 1),), pool_first=True, name="tower_2")(x)], -1)


class InceptionB(nn.Module):

  @nn.compact
  def __call__(self, x):
    return jnp.concatenate([
        ConvBlock(*_spec(384, 3, 2, "valid"), name="conv")(x),
        Tower((_spec(64, 1), _spec(96, 3), _spec(96, 3, 2, "valid")), name="tower")(x),
        _max_pool_3x3_stride_2(x)], -1)


class InceptionC(nn.Module):
  channels_7x7: int

  @nn.compact
  def __call__(self, x):
    c = self.channels_7x7
    return jnp.concatenate([
        ConvBlock(192, (1, 1), name="conv")(x),
        Tower((_spec(c, 1), _spec(c, (1, 7)), _spec(192, (7, 1))), name="tower")(x),
        Tower((_spec(c, 1), _spec(c, (7, 1)), _spec(c, (1, 7)), _spec(c, (7, 1)),
               _spec(192, (1, 7))), name="tower_1")(x),
        Tower((_spec(192, 1),), pool_first=True, name="tower_2")(x)], -1)


class InceptionD(nn.Module):

  @nn.compact
  def __call__(self, x):
    return jnp.concatenate([
        Tower((_spec(192, 1), _spec(320, 3, 2, "valid")), name="tower")(x),
        Tower((_spec(192, 1), _spec(192, (1, 7)), _spec(192, (7, 1)),
               _spec(192, 3, 2, "valid")), name="tower_1")(x),
        _max_pool_3x3_stride_2(x)], -1)


class InceptionE(nn.Module):
  """The last two blocks; the FID graph's final one max-pools its pool branch."""

  max_pool: bool = False

  @nn.compact
  def __call__(self, x):
    a = ConvBlock(384, (1, 1), name="tower_conv")(x)
    b = ConvBlock(448, (1, 1), name="tower_1_conv")(x)
    b = ConvBlock(384, (3, 3), name="tower_1_conv_1")(b)
    if self.max_pool:
      pooled = nn.max_pool(x, (3, 3), strides=(1, 1), padding=((1, 1), (1, 1)))
    else:
      pooled = _average_pool_3x3(x)
    return jnp.concatenate([
        ConvBlock(320, (1, 1), name="conv")(x),
        ConvBlock(384, (1, 3), name="tower_mixed_conv")(a),
        ConvBlock(384, (3, 1), name="tower_mixed_conv_1")(a),
        ConvBlock(384, (1, 3), name="tower_1_mixed_conv")(b),
        ConvBlock(384, (3, 1), name="tower_1_mixed_conv_1")(b),
        ConvBlock(192, (1, 1), name="tower_2_conv")(pooled)], -1)


class FidInceptionV3(nn.Module):
  """(N, 299, 299, 3) in (x - 128) / 128 -> (N, 2048) pool3 features."""

  @nn.compact
  def __call__(self, x):
    x = ConvBlock(*_spec(32, 3, 2, "valid"), name="conv")(x)
    x = ConvBlock(*_spec(32, 3, 1, "valid"), name="conv_1")(x)
    x = ConvBlock(*_spec(64, 3), name="conv_2")(x)
    x = _max_pool_3x3_stride_2(x)
    x = ConvBlock(*_spec(80, 1), name="conv_3")(x)
    x = ConvBlock(*_spec(192, 3, 1, "valid"), name="conv_4")(x)
    x = _max_pool_3x3_stride_2(x)
    blocks = ([functools.partial(InceptionA, f) for f in (32, 64, 64)] + [InceptionB]
              + [functools.partial(InceptionC, c) for c in (128, 160, 160, 192)]
              + [InceptionD, functools.partial(InceptionE, max_pool=False),
                 functools.partial(InceptionE, max_pool=True)])
    for index, block in enumerate(blocks):
      x = block(name="mixed" if index == 0 else f"mixed_{index}")(x)
    x = nn.avg_pool(x, (8, 8), strides=(8, 8))
    return x.reshape(x.shape[0], FEATURE_DIM)


def conv_options(params) -> dict[str, dict]:
  """Each convolution's stride and padding by archive path, as the network
  defines them, in the archive's notation (an int, or [h, w] for non-square
  kernels): compared with the archive's own in the tests."""
  module = FidInceptionV3()
  options = {}

  def record(next_fun, args, kwargs, context):
    del kwargs
    if isinstance(context.module, ConvBlock) and context.method_name == "__call__":
      conv = context.module
      pads = [0 if conv.padding == "valid" else (k - 1) // 2 for k in conv.kernel]
      padding = pads[0] if conv.kernel[0] == conv.kernel[1] else pads
      options[".".join(conv.path)] = {"stride": conv.stride, "padding": padding}
    return next_fun(*args)

  with nn.intercept_methods(record):
    jax.eval_shape(module.apply, {"params": params},
                   jax.ShapeDtypeStruct((1, INPUT_SIZE, INPUT_SIZE, 3), jnp.float32))
  return options


def init_params(key: jax.Array):
  """Random parameters of the right shapes (for tests without the weights)."""
  return jax.jit(FidInceptionV3().init)(key, jnp.zeros((1, INPUT_SIZE, INPUT_SIZE, 3)))["params"]


def convert_params(tensors: dict[str, np.ndarray]) -> dict:
  """Archive tensors -> the network's params: each kernel OIHW -> HWIO with
  1 / sqrt(var + eps) folded in per output channel, bias = beta - mean times
  that factor. In float64, rounded to float32 once."""
  params: dict = {}
  for path in inception_weights.conv_paths():
    scale = 1.0 / np.sqrt(tensors[f"{path}.var"].astype(np.float64) + BATCH_NORM_EPSILON)
    kernel = np.transpose(tensors[f"{path}.weight"].astype(np.float64), (2, 3, 1, 0)) * scale
    bias = tensors[f"{path}.beta"] - tensors[f"{path}.mean"] * scale
    node = params
    for name in path.split("."):
      node = node.setdefault(name, {})
    node.update(kernel=kernel.astype(np.float32), bias=bias.astype(np.float32))
  return params


@dataclasses.dataclass(frozen=True)
class InceptionExtractor:
  """The network's converted params and where they came from."""

  params: dict
  provenance: dict

  @property
  def sha256(self) -> str:
    return self.provenance["sha256"]


@functools.lru_cache(maxsize=2)
def load_extractor(data_dir: Optional[str] = None,
                   path: Optional[str] = None) -> InceptionExtractor:
  """The prepared weights of `data_dir` (or the user's file `path`),
  hash-checked and converted once per process."""
  tensors, provenance = inception_weights.load_weights(data_dir, path)
  params = convert_params(tensors)
  expected = jax.eval_shape(init_params, jax.random.PRNGKey(0))
  if jax.tree.map(np.shape, params) != jax.tree.map(lambda x: x.shape, expected):
    raise inception_weights.InceptionWeightsError(
        f"{path or data_dir}: the weights do not fit the FID Inception-v3.")
  return InceptionExtractor(jax.tree.map(jnp.asarray, params), provenance)


# --- Input ------------------------------------------------------------------


def tf1_bilinear_matrix(size_in: int, size_out: int) -> np.ndarray:
  """(size_out, size_in) weights of TF 1's bilinear resize along one axis:
  output i samples the input at i * size_in / size_out (no half-pixel
  offset), between its floor and the next index (clamped at the edge)."""
  position = np.arange(size_out) * (size_in / size_out)
  low = np.floor(position).astype(np.int64)
  high = np.minimum(low + 1, size_in - 1)
  frac = position - low
  matrix = np.zeros((size_out, size_in))
  np.add.at(matrix, (np.arange(size_out), low), 1.0 - frac)
  np.add.at(matrix, (np.arange(size_out), high), frac)
  return matrix.astype(np.float32)


def to_uint8_levels(images, value_range: tuple[float, float]) -> np.ndarray:
  """(N, H, W[, C]) images in `value_range` -> float32 (N, H, W, 3) 8-bit
  levels 0..255, rounded, grey replicated to three channels."""
  x = np.asarray(images, np.float32)
  if x.ndim == 3:
    x = x[..., None]
  if x.ndim != 4 or x.shape[-1] not in (1, 3):
    raise ValueError(f"Inception features take (N, H, W, 1 or 3) images; got {x.shape}.")
  low, high = value_range
  levels = np.clip(np.round((x - low) * (255.0 / (high - low))), 0, 255)
  if levels.shape[-1] == 1:
    levels = np.repeat(levels, 3, axis=-1)
  return levels.astype(np.float32)


def _network_input(levels: jax.Array, resize_h: jax.Array, resize_w: jax.Array) -> jax.Array:
  resized = jnp.einsum("oh,nhwc,pw->nopc", resize_h, levels, resize_w,
                       precision=jax.lax.Precision.HIGHEST)
  return (resized - 128.0) / 128.0


def _forward(params, levels, resize_h, resize_w):
  return FidInceptionV3().apply({"params": params}, _network_input(levels, resize_h, resize_w))


@functools.lru_cache(maxsize=None)
def _jitted_forward(mesh: Mesh):
  # The project's CPU kernel choice (gan_jax.step): XLA's own convolutions
  # ran this network 1.8x faster than the YNNPACK ones of XLA's default.
  return jax.jit(_forward, compiler_options=step_lib.compiler_options(mesh) or None)


def features(extractor: InceptionExtractor, images, *,
             value_range: tuple[float, float] = (0.0, 255.0), batch_size: int = 64,
             devices: Optional[Sequence[jax.Device]] = None) -> np.ndarray:
  """(N, 2048) pool3 features of `images` (N, H, W, 1 or 3) with values in
  `value_range`, resized and scaled as the module docstring says.

  Batches of one fixed size (the last padded) keep it to one compiled
  program; each batch is split over `devices` (default: every local device)
  along the batch axis, the params replicated. A batch size that is not a
  multiple of the device count is rounded up to one.
  """
  levels = to_uint8_levels(images, value_range)
  count, height, width = levels.shape[:3]
  if not count:
    raise ValueError("Inception features need at least one image.")
  devices = list(devices or jax.local_devices())
  per_device = math.ceil(min(batch_size, count) / len(devices))
  batch_size = per_device * len(devices)
  mesh = make_mesh(devices)
  params = jax.device_put(extractor.params, replicated(mesh))
  resize_h = jax.device_put(tf1_bilinear_matrix(height, INPUT_SIZE), replicated(mesh))
  resize_w = jax.device_put(tf1_bilinear_matrix(width, INPUT_SIZE), replicated(mesh))
  batch_sharding = NamedSharding(mesh, P(DATA_AXIS))
  forward = _jitted_forward(mesh)
  outputs = []
  for start in range(0, count, batch_size):
    batch = levels[start:start + batch_size]
    batch = np.pad(batch, ((0, batch_size - len(batch)), (0, 0), (0, 0), (0, 0)))
    outputs.append(forward(params, jax.device_put(batch, batch_sharding), resize_h, resize_w))
  return np.concatenate([np.asarray(o) for o in outputs])[:count]
