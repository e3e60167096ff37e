"""Image architectures: shapes, conditioning, spectral norm, cross-replica BN.

Shapes and config errors are checked with `jax.eval_shape`, which traces the
whole model without compiling it. Numerical tests fill the variables from
numpy instead of running `init`: on CPU, XLA takes seconds to compile each
threefry sampler, far longer than the models themselves.
"""

import functools
import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.sharding import PartitionSpec as P

from gan_jax.models import DISCRIMINATORS, GENERATORS, build_module
from gan_jax.models.layers import (SPECTRAL_NORM, ConditionalBatchNorm, ProjectionHead, SNConv,
                                   SNDense, minibatch_stddev, spectral_normalize)
from gan_jax.registry import ConfigError
from gan_jax.sharding import DATA_AXIS, make_mesh
from gan_jax.state import Player

LATENT_DIM = 8
NUM_CLASSES = 3
# name -> (tiny width options, supported (height, width, channels))
IMAGE_MODELS = {
    "dcgan": ({"base_features": 4},
              [(side, side, c) for side in (28, 32, 64) for c in (1, 3)]),
    "sngan_resnet": ({"features": 8}, [(32, 32, 1), (32, 32, 3)]),
}
CASES = [(name, shape) for name, (_, shapes) in IMAGE_MODELS.items() for shape in shapes]


def _generator(name, shape, **options):
  return build_module(GENERATORS, name, {**IMAGE_MODELS[name][0], **options},
                      output_shape=shape)


def _discriminator(name, **options):
  return build_module(DISCRIMINATORS, name, {**IMAGE_MODELS[name][0], **options})


def _init_shapes(module, *inputs):
  return jax.eval_shape(functools.partial(module.init, train=False),
                        jax.random.PRNGKey(0), *inputs)


def _random_variables(module, *inputs, seed=0):
  """Variables of the right structure, normal with std 1/sqrt(fan_in).

  Unlike a fresh init, every class gets its own batch-norm gain and bias,
  so conditioning is visible from the first call.
  """
  rng = np.random.default_rng(seed)

  def fill(path, leaf):
    if path[-1].key == "var":  # batch-norm running variance
      return jnp.ones(leaf.shape, leaf.dtype)
    fan_in = math.prod(leaf.shape[:-1]) if len(leaf.shape) > 1 else 1
    return jnp.asarray(rng.normal(size=leaf.shape) / math.sqrt(fan_in), leaf.dtype)

  return jax.tree_util.tree_map_with_path(fill, _init_shapes(module, *inputs))


def _labels(batch):
  return jnp.arange(batch, dtype=jnp.int32) % NUM_CLASSES


@pytest.mark.parametrize("num_classes", [0, NUM_CLASSES])
@pytest.mark.parametrize("name, shape", CASES)
def test_output_shapes(name, shape, num_classes):
  batch = 4
  labels = _labels(batch) if num_classes else None
  z = jnp.zeros((batch, LATENT_DIM))
  x = jnp.zeros((batch, *shape))
  g = _generator(name, shape, num_classes=num_classes)
  variables = _init_shapes(g, z, labels)
  out = jax.eval_shape(functools.partial(g.apply, train=False), variables, z, labels)
  assert out.shape == (batch, *shape)
  # axis_name=None: training-mode batch norm outside shard_map.
  out, _ = jax.eval_shape(functools.partial(g.clone(axis_name=None).apply, train=True,
                                            mutable=True), variables, z, labels)
  assert out.shape == (batch, *shape)
  d = _discriminator(name, num_classes=num_classes)
  variables = _init_shapes(d, x, labels)
  for train in (False, True):
    out = jax.eval_shape(functools.partial(d.apply, train=train, mutable=train),
                         variables, x, labels)
    assert (out[0] if train else out).shape == (batch,)


def _kernel_shapes(module, *inputs):
  params = _init_shapes(module, *inputs)["params"]
  return {jax.tree_util.keystr(path): leaf.shape
          for path, leaf in jax.tree_util.tree_leaves_with_path(params)
          if path[-1].key in ("kernel", "embedding")}


def test_default_widths_follow_the_papers():
  # DCGAN at 64 px: widths 512, 256, 128, 64 from 4x4, as in the PyTorch reference.
  g = _kernel_shapes(build_module(GENERATORS, "dcgan", {}, output_shape=(64, 64, 3)),
                     jnp.zeros((1, 100)))
  assert list(g.values()) == [(4, 4, 512, 256), (4, 4, 256, 128), (4, 4, 128, 64),
                              (4, 4, 64, 3), (100, 4 * 4 * 512)]
  d = _kernel_shapes(build_module(DISCRIMINATORS, "dcgan", {}), jnp.zeros((1, 64, 64, 3)))
  assert list(d.values()) == [(4, 4, 3, 64), (4, 4, 64, 128), (4, 4, 128, 256),
                              (4, 4, 256, 512), (4 * 4 * 512, 1)]
  # SN-GAN CIFAR ResNet: 256-channel G blocks from 4x4, 128-channel D blocks.
  g = _kernel_shapes(build_module(GENERATORS, "sngan_resnet", {}, output_shape=(32, 32, 3)),
                     jnp.zeros((1, 128)))
  assert g["['Dense_0']['kernel']"] == (128, 4 * 4 * 256)
  assert sum("GeneratorBlock" in k for k in g) == 3 * 3
  assert all(shape[-1] == 256 for k, shape in g.items() if "GeneratorBlock" in k)
  assert g["['Conv_0']['kernel']"] == (3, 3, 256, 3)
  d = _kernel_shapes(build_module(DISCRIMINATORS, "sngan_resnet", {"num_classes": 10}),
                     jnp.zeros((1, 32, 32, 3)), jnp.zeros((1,), jnp.int32))
  assert all(shape[-1] == 128 for k, shape in d.items() if "DiscriminatorBlock" in k)
  assert sum("DiscriminatorBlock" in k for k in d) == 3 + 3 + 2 + 2
  assert d["['ProjectionHead_0']['SNDense_0']['kernel']"] == (128, 1)
  assert d["['ProjectionHead_0']['SNEmbed_0']['embedding']"] == (10, 128)


@pytest.mark.parametrize("options", [{"batch_norm": True}, {"spectral_norm": True},
                                     {"kernel_size": 5}, {"minibatch_stddev": 2}])
def test_dcgan_discriminator_options(options):
  x = jnp.zeros((2, 32, 32, 3))
  d = _discriminator("dcgan", axis_name=None, **options)
  out, _ = jax.eval_shape(functools.partial(d.apply, train=True, mutable=True),
                          _init_shapes(d, x), x)
  assert out.shape == (2,)


def test_minibatch_stddev_matches_a_loop_over_groups():
  x = np.random.default_rng(0).normal(size=(6, 2, 3, 4)).astype(np.float32)
  x[3:] *= 3  # a group three times as spread
  out = np.asarray(minibatch_stddev(jnp.asarray(x), 3))
  np.testing.assert_array_equal(out[..., :4], x)
  for start in (0, 3):
    group = x[start:start + 3].astype(np.float64)
    spread = np.mean(np.sqrt(np.mean((group - group.mean(0)) ** 2, axis=0) + 1e-8))
    np.testing.assert_allclose(out[start:start + 3, ..., 4], spread, rtol=1e-5)
  # A feature pooled over the whole batch would give both groups one value.
  assert out[3, 0, 0, 4] > 2 * out[0, 0, 0, 4]
  with pytest.raises(ConfigError, match="must divide"):
    minibatch_stddev(jnp.asarray(x[:5]), 3)


@pytest.mark.parametrize("name, shape", [("dcgan", (48, 48, 3)), ("dcgan", (32, 28, 3)),
                                         ("dcgan", (32, 32)), ("sngan_resnet", (64, 64, 3)),
                                         ("sngan_resnet", (28, 28, 1))])
def test_unsupported_resolution_is_a_config_error(name, shape):
  with pytest.raises(ConfigError, match="got"):
    _init_shapes(_generator(name, shape), jnp.zeros((2, LATENT_DIM)))
  if len(shape) == 3:
    with pytest.raises(ConfigError, match="got"):
      _init_shapes(_discriminator(name), jnp.zeros((2, *shape)))


@pytest.mark.parametrize("name", IMAGE_MODELS)
def test_conditional_model_without_labels_is_an_error(name):
  shape = IMAGE_MODELS[name][1][-1]
  with pytest.raises(ConfigError, match="needs class labels"):
    _init_shapes(_generator(name, shape, num_classes=NUM_CLASSES), jnp.zeros((2, LATENT_DIM)))
  with pytest.raises(ConfigError, match="needs class labels"):
    _init_shapes(_discriminator(name, num_classes=NUM_CLASSES), jnp.zeros((2, *shape)))


@pytest.mark.parametrize("name", IMAGE_MODELS)
def test_labels_change_outputs_only_through_the_class(name):
  """One latent (or image) repeated under labels 0, 1, 2, 0: rows 0 and 3
  must agree, rows 0, 1 and 2 must not."""
  shape = (32, 32, 3)
  labels = jnp.array([0, 1, 2, 0], jnp.int32)
  rng = np.random.default_rng(1)
  z = jnp.asarray(np.repeat(rng.normal(size=(1, LATENT_DIM)), 4, axis=0), jnp.float32)
  x = jnp.asarray(np.repeat(rng.uniform(-1, 1, size=(1, *shape)), 4, axis=0), jnp.float32)
  for module, inputs in ((_generator(name, shape, num_classes=NUM_CLASSES), z),
                         (_discriminator(name, num_classes=NUM_CLASSES), x)):
    variables = _random_variables(module, inputs, labels)
    out = np.asarray(jax.jit(functools.partial(module.apply, train=False))(
        variables, inputs, labels))
    out = out.reshape(4, -1)
    np.testing.assert_allclose(out[0], out[3], rtol=1e-5, atol=1e-6)
    for a, b in ((0, 1), (0, 2), (1, 2)):
      assert np.max(np.abs(out[a] - out[b])) > 1e-3, (type(module).__name__, a, b)


def test_unconditional_models_ignore_labels():
  g = _generator("dcgan", (28, 28, 1))
  z = jnp.asarray(np.random.default_rng(0).normal(size=(2, LATENT_DIM)), jnp.float32)
  variables = _random_variables(g, z)
  apply = jax.jit(functools.partial(g.apply, train=False))
  np.testing.assert_array_equal(apply(variables, z, None),
                                apply(variables, z, jnp.array([0, 1])))


def test_projection_head_is_linear_plus_class_inner_product():
  rng = np.random.default_rng(0)
  h = jnp.asarray(rng.normal(size=(5, 6)), jnp.float32)
  labels = jnp.asarray([0, 1, 2, 1, 0], jnp.int32)
  head = ProjectionHead(NUM_CLASSES)
  variables = _random_variables(head, h, labels)
  params = jax.tree.map(np.asarray, variables["params"])
  expected = (np.asarray(h) @ params["Dense_0"]["kernel"][:, 0] + params["Dense_0"]["bias"][0]
              + np.sum(params["Embed_0"]["embedding"][labels] * np.asarray(h), axis=1))
  np.testing.assert_allclose(head.apply(variables, h, labels, train=False), expected,
                             rtol=1e-5, atol=1e-5)


class _NormalizedWeight(nn.Module):
  """Returns its spectrally normalised weight, to compare with numpy."""

  shape: tuple

  @nn.compact
  def __call__(self, *, train):
    weight = self.param("weight", nn.initializers.zeros, self.shape)
    return spectral_normalize(self, weight, train=train)


def _power_iterate(module, variables, steps, *inputs):
  apply = jax.jit(functools.partial(module.apply, train=True, mutable=[SPECTRAL_NORM]))
  for _ in range(steps):
    out, updates = apply(variables, *inputs)
    variables = {**variables, **updates}
  return out, variables


@pytest.mark.parametrize("shape", [(20, 6), (3, 3, 5, 7)])
def test_spectral_norm_reaches_unit_largest_singular_value(shape):
  module = _NormalizedWeight(shape)
  variables = _random_variables(module)
  variables["params"]["weight"] *= 5
  raw = np.asarray(variables["params"]["weight"]).reshape(-1, shape[-1])
  singular_values = np.linalg.svd(raw, compute_uv=False)
  assert singular_values[0] > 2  # a real normalisation, not a no-op

  normalized, variables = _power_iterate(module, variables, 200)
  top = np.linalg.svd(np.asarray(normalized).reshape(-1, shape[-1]), compute_uv=False)[0]
  np.testing.assert_allclose(top, 1.0, rtol=1e-4)
  # Evaluation mode reuses u without updating it.
  _, unchanged = module.apply(variables, train=False, mutable=[SPECTRAL_NORM])
  np.testing.assert_array_equal(unchanged[SPECTRAL_NORM]["u"], variables[SPECTRAL_NORM]["u"])
  # Power iteration never overestimates sigma, so an unconverged estimate
  # leaves the largest singular value above 1, not below.
  fresh = {**variables, SPECTRAL_NORM: _random_variables(module, seed=1)[SPECTRAL_NORM]}
  first = np.asarray(module.apply(fresh, train=False)).reshape(-1, shape[-1])
  assert np.linalg.svd(first, compute_uv=False)[0] >= 1 - 1e-5


def test_spectrally_normalized_layers_use_the_normalized_kernel():
  x = jnp.asarray(np.random.default_rng(0).normal(size=(2, 6, 6, 5)), jnp.float32)
  for layer, plain, inputs in ((SNDense(7), nn.Dense(7), x.reshape(2, -1)),
                               (SNConv(7, (3, 3), strides=2), nn.Conv(7, (3, 3), strides=2), x)):
    variables = _random_variables(layer, inputs)
    out, variables = _power_iterate(layer, variables, 200, inputs)
    params = dict(variables["params"])
    kernel = np.asarray(params["kernel"])
    params["kernel"] = kernel / np.linalg.svd(kernel.reshape(-1, 7), compute_uv=False)[0]
    expected = plain.apply({"params": params}, inputs)
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-5)


def test_conditional_batch_norm_moments_are_global():
  """Under shard_map on 4 devices, each with 2 examples of different means,
  the output and running statistics equal the one-device full-batch result."""
  mesh = make_mesh(jax.devices()[:4])
  rng = np.random.default_rng(0)
  offsets = np.repeat(np.arange(4.0), 2)[:, None, None, None]  # per-device means differ
  x = jnp.asarray(rng.normal(size=(8, 3, 3, 5)) + 3 * offsets, jnp.float32)
  labels = jnp.asarray(rng.integers(0, NUM_CLASSES, 8), jnp.int32)
  sharded_bn = ConditionalBatchNorm(NUM_CLASSES)
  variables = _random_variables(sharded_bn, x, labels)
  apply = functools.partial(sharded_bn.apply, train=True, mutable=["batch_stats"])
  sharded = jax.jit(jax.shard_map(apply, mesh=mesh, in_specs=(P(), P(DATA_AXIS), P(DATA_AXIS)),
                                  out_specs=(P(DATA_AXIS), P())))
  out, stats = sharded(variables, x, labels)

  single_bn = ConditionalBatchNorm(NUM_CLASSES, axis_name=None)
  expected, expected_stats = single_bn.apply(variables, x, labels, train=True,
                                             mutable=["batch_stats"])
  np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)
  jax.tree.map(functools.partial(np.testing.assert_allclose, rtol=1e-5, atol=1e-6),
               stats, expected_stats)
  # The closed form: global moments, then the label's own gain and bias.
  xn = np.asarray(x, np.float64)
  normalized = (xn - xn.mean(axis=(0, 1, 2))) / np.sqrt(xn.var(axis=(0, 1, 2)) + 1e-5)
  gain = np.asarray(variables["params"]["gain"])[labels][:, None, None]
  bias = np.asarray(variables["params"]["bias"])[labels][:, None, None]
  np.testing.assert_allclose(expected, normalized * gain + bias, rtol=1e-4, atol=1e-4)
  # Per-device moments would give a different answer: the test can fail.
  local, _ = single_bn.apply(variables, x[:2], labels[:2], train=True, mutable=["batch_stats"])
  assert np.max(np.abs(np.asarray(local) - np.asarray(expected[:2]))) > 0.1


@pytest.mark.parametrize("name, player", [("dcgan", "generator"), ("sngan_resnet", "generator"),
                                          ("dcgan", "discriminator"),
                                          ("sngan_resnet", "discriminator")])
def test_training_mode_on_four_devices_matches_one(name, player):
  """Player.apply in training mode under shard_map, as in the step: batch
  norm and spectral-norm updates match the one-device computation."""
  mesh = make_mesh(jax.devices()[:4])
  shape = (32, 32, 3)
  labels = _labels(8)
  rng = np.random.default_rng(0)
  if player == "generator":
    inputs = jnp.asarray(rng.normal(size=(8, LATENT_DIM)), jnp.float32)
    sharded_module = _generator(name, shape, num_classes=NUM_CLASSES)
    single_module = _generator(name, shape, num_classes=NUM_CLASSES, axis_name=None)
  else:
    inputs = jnp.asarray(rng.uniform(-1, 1, size=(8, *shape)), jnp.float32)
    # DCGAN's D is stateless by default; turn on both of its stateful layers.
    options = {"batch_norm": True, "spectral_norm": True} if name == "dcgan" else {}
    sharded_module = _discriminator(name, num_classes=NUM_CLASSES, **options)
    single_module = (_discriminator(name, num_classes=NUM_CLASSES, axis_name=None, **options)
                     if name == "dcgan" else sharded_module)
  variables = _random_variables(sharded_module, inputs, labels)
  assert set(variables) - {"params"}, "expected mutable state to check"

  def run(module, *args):
    player_state = Player.create(module, optax.sgd(0.1), variables)
    return player_state.apply(player_state.params, *args, train=True)

  sharded = jax.jit(jax.shard_map(functools.partial(run, sharded_module), mesh=mesh,
                                  in_specs=(P(DATA_AXIS), P(DATA_AXIS)),
                                  out_specs=(P(DATA_AXIS), P())))
  out, collections = sharded(inputs, labels)
  expected, expected_collections = jax.jit(functools.partial(run, single_module))(
      inputs, labels)
  np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-5)
  jax.tree.map(functools.partial(np.testing.assert_allclose, rtol=1e-4, atol=1e-6),
               collections, expected_collections)
  changed = jax.tree.map(lambda a, b: bool(np.any(np.asarray(a) != np.asarray(b))),
                         collections, {k: v for k, v in variables.items() if k != "params"})
  assert all(jax.tree.leaves(changed)), "training mode must update every statistic"


def test_dcgan_label_embedding_conditions_generator_on_its_own():
  """With every class's batch-norm gain and bias made equal, only the label
  embedding concatenated to z can make the classes differ."""
  g = _generator("dcgan", (28, 28, 1), num_classes=NUM_CLASSES, label_embedding_dim=4)
  z = jnp.asarray(np.repeat(np.random.default_rng(2).normal(size=(1, LATENT_DIM)), 3, 0),
                  jnp.float32)
  labels = jnp.array([0, 1, 0], jnp.int32)
  variables = _random_variables(g, z, labels)

  def same_rows(path, leaf):
    names = [getattr(p, "key", "") for p in path]
    return (jnp.broadcast_to(leaf[:1], leaf.shape)
            if names[-1] in ("gain", "bias") and leaf.ndim == 2 else leaf)

  variables = jax.tree_util.tree_map_with_path(same_rows, variables)
  out = np.asarray(g.apply(variables, z, labels, train=False))
  np.testing.assert_array_equal(out[0], out[2])
  assert np.abs(out[0] - out[1]).max() > 1e-3
  variables["params"]["Embed_0"]["embedding"] = jnp.zeros_like(
      variables["params"]["Embed_0"]["embedding"])
  out = np.asarray(g.apply(variables, z, labels, train=False))
  np.testing.assert_array_equal(out[0], out[1])
