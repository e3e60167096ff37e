"""PhaseConvTranspose against nn.ConvTranspose, and PhaseGradientConv against
nn.Conv: same parameters, same outputs, same gradients (up to float32
round-off: the sums run in another order).

Compiling, not running, takes the time here: each test compiles its cases as
one unoptimised program, and variables are filled from numpy, not by `init`.
"""

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax import backend
from gan_jax.models import DISCRIMINATORS, GENERATORS, build_module, module_config
from gan_jax.models.autoencoder import DECODERS
from gan_jax.models.transposed_conv import (MAX_TAP_FORM_FEATURES, PhaseConvTranspose,
                                            PhaseGradientConv, conv_layer, conv_transpose_layer)
from gan_jax.registry import ConfigError

# (batch, input side, in channels, out features): 7 -> 14, 4 -> 8, 14 -> 28.
# Out features 5 take the phase form; 3 and 1 the tap form.
SHAPES = [(2, 7, 6, 5), (3, 4, 8, 3), (1, 14, 3, 1)]
RTOL = 1e-5


def _normal(shape, seed):
  return jnp.asarray(np.random.default_rng(seed).normal(size=shape).astype(np.float32))


def _random_variables(options, x, seed=1, reference=nn.ConvTranspose):
  """The reference layer's variables, unit normal (the bias too, so that
  adding it is checked)."""
  shapes = jax.eval_shape(reference(**options).init, jax.random.PRNGKey(0), x)
  leaves, tree = jax.tree.flatten(shapes)
  return jax.tree.unflatten(tree, [_normal(leaf.shape, seed + i) for i, leaf in enumerate(leaves)])


def _compiled(fn, *args):
  """`fn` compiled for `args` without LLVM's optimisations, which would double
  the compile time of these tiny programs."""
  return jax.jit(fn).lower(*args).compile({"xla_backend_optimization_level": 0})


def _assert_close(actual, expected):
  # Round-off relative to the largest value, as the sums mix signs.
  expected = np.asarray(expected)
  scale = max(float(np.max(np.abs(expected))), 1.0)
  np.testing.assert_allclose(actual, expected, rtol=RTOL, atol=RTOL * scale)


def _assert_same_functions(cases, candidate=PhaseConvTranspose, reference=nn.ConvTranspose):
  """For each (options, x): candidate(**options) and reference(**options)
  give the same output, and the same vector-Jacobian product with respect to
  the variables and to x."""
  arrays = []
  for options, x in cases:
    variables = _random_variables(options, x, reference=reference)
    output = jax.eval_shape(reference(**options).apply, variables, x)
    arrays.append((variables, x, _normal(output.shape, seed=0)))

  def candidate_and_reference(arrays):
    def output_and_vjp(module, variables, x, cotangent):
      y, pullback = jax.vjp(module.apply, variables, x)
      return y, pullback(cotangent)

    return [(output_and_vjp(candidate(**options), *case),
             output_and_vjp(reference(**options), *case))
            for (options, _), case in zip(cases, arrays)]

  for ours, theirs in _compiled(candidate_and_reference, arrays)(arrays):
    jax.tree.map(_assert_close, ours, theirs)


@pytest.mark.parametrize("kernel_size", [3, 4, 5])
def test_matches_conv_transpose(kernel_size):
  cases = []
  for i, (batch, side, channels, features) in enumerate(SHAPES):
    options = dict(features=features, kernel_size=(kernel_size, kernel_size),
                   strides=(2, 2), padding="SAME", use_bias=i % 2 == 0)
    x = _normal((batch, side, side, channels), seed=i)
    assert jax.eval_shape(PhaseConvTranspose(**options).apply,
                          _random_variables(options, x), x).shape == (
        batch, 2 * side, 2 * side, features)
    cases.append((options, x))
  _assert_same_functions(cases)


# Both forms: the tap form up to MAX_TAP_FORM_FEATURES output features, the
# phase convolutions above.
@pytest.mark.parametrize("features", [MAX_TAP_FORM_FEATURES, MAX_TAP_FORM_FEATURES + 2])
def test_matches_conv_transpose_in_other_layouts(features):
  _assert_same_functions([
      (dict(features=features, kernel_size=(4,), strides=2), _normal((2, 9, 3), 0)),  # 1-D
      # Unequal sides; the smallest kernel the phases support.
      (dict(features=features, kernel_size=(2, 3), strides=2), _normal((2, 5, 6, 3), 1)),
      (dict(features=features, kernel_size=(4, 4), strides=2), _normal((2, 2, 5, 5, 3), 2)),
      (dict(features=features, kernel_size=(5, 5), strides=2), _normal((5, 5, 3), 3)),  # unbatched
  ])


@pytest.mark.parametrize("features,form", [(1, "dot_general"), (MAX_TAP_FORM_FEATURES, "dot_general"),
                                           (MAX_TAP_FORM_FEATURES + 1, "conv_general_dilated")])
def test_few_output_features_take_the_tap_form(features, form):
  """The forward pass and the derivative: the tap form's gathered derivative
  runs matrix products, no (one-to-three-column) convolution."""
  options = dict(features=features, kernel_size=(4, 4), strides=(2, 2), padding="SAME")
  x = _normal((2, 7, 7, 8), seed=0)
  apply = PhaseConvTranspose(**options).apply
  variables = _random_variables(options, x)
  forward = str(jax.make_jaxpr(apply)(variables, x))
  derivative = str(jax.make_jaxpr(jax.grad(lambda v, x: jnp.sum(apply(v, x) ** 2),
                                           argnums=(0, 1)))(variables, x))
  other = {"dot_general", "conv_general_dilated"} - {form}
  for jaxpr in (forward, derivative):
    assert form in jaxpr and not any(name in jaxpr for name in other)


@pytest.mark.parametrize("options", [
    dict(strides=(1, 1)), dict(strides=(2, 2), padding="VALID"),
    dict(strides=(2, 2), transpose_kernel=True), dict(kernel_size=(1, 1), strides=(2, 2)),
])
def test_other_settings_run_conv_transpose(options):
  options = {"features": 4, "kernel_size": (3, 3), **options}
  x = _normal((2, 5, 5, 3), seed=0)
  variables = _random_variables(options, x)
  np.testing.assert_array_equal(PhaseConvTranspose(**options).apply(variables, x),
                                nn.ConvTranspose(**options).apply(variables, x))


class _Upsampler(nn.Module):
  """Two unnamed transposed convolutions, as in the DCGAN generator."""
  conv_transpose: str

  @nn.compact
  def __call__(self, x):
    layer = conv_transpose_layer(self.conv_transpose)
    x = layer(6, (4, 4), strides=(2, 2), padding="SAME", use_bias=False,
              kernel_init=nn.initializers.normal(0.02))(x)
    return layer(1, (4, 4), strides=(2, 2), padding="SAME",
                 kernel_init=nn.initializers.normal(0.02))(nn.relu(x))


def test_same_key_initialises_identical_parameters():
  x = jnp.ones((1, 7, 7, 8))
  # An "rbg" key compiles much faster than threefry on CPU; what is tested is
  # which key each parameter gets, not the generator.
  key = jax.random.key(3, impl="rbg")
  xla, phase = (_compiled(_Upsampler(name).init, key, x)(key, x) for name in ("xla", "phase"))
  assert jax.tree.map(jnp.shape, phase) == {"params": {
      "ConvTranspose_0": {"kernel": (4, 4, 8, 6)},
      "ConvTranspose_1": {"kernel": (4, 4, 6, 1), "bias": (1,)}}}
  jax.tree.map(np.testing.assert_array_equal, phase, xla)
  assert float(jnp.std(phase["params"]["ConvTranspose_0"]["kernel"])) > 0.01


def test_unknown_implementation_is_a_config_error():
  with pytest.raises(ConfigError, match="phase, xla"):
    conv_transpose_layer("fft")


# PhaseGradientConv: a stride-2 convolution whose input derivative runs as
# phase convolutions (or the tap form, for at most MAX_TAP_FORM_FEATURES input
# channels). Input channels 1 and 3 take the tap form, 6 the phases.
CONV_SHAPES = [(2, 14, 6, 5), (3, 8, 3, 4), (2, 28, 1, 8)]


def _conv_options(features, kernel_size, **extra):
  return dict(features=features, kernel_size=kernel_size, strides=2, padding="SAME", **extra)


@pytest.mark.parametrize("kernel_size", [2, 3, 4, 5])
def test_phase_gradient_conv_matches_conv(kernel_size):
  cases = []
  for i, (batch, side, channels, features) in enumerate(CONV_SHAPES):
    options = _conv_options(features, (kernel_size, kernel_size), use_bias=i % 2 == 0)
    cases.append((options, _normal((batch, side, side, channels), seed=i)))
  _assert_same_functions(cases, PhaseGradientConv, nn.Conv)


def test_phase_gradient_conv_matches_conv_in_other_layouts():
  _assert_same_functions([
      (_conv_options(4, (4,)), _normal((2, 10, 6), 0)),  # 1-D
      (_conv_options(4, (2, 3)), _normal((2, 6, 8, 5), 1)),  # unequal sides
      (_conv_options(4, (4, 4)), _normal((2, 2, 6, 6, 3), 2)),  # two batch axes
      (_conv_options(4, (4, 4)), _normal((6, 6, 3), 3)),  # unbatched
  ], PhaseGradientConv, nn.Conv)


def test_phase_gradient_conv_second_derivative_matches_conv():
  """Gradient penalties differentiate D's input gradient once more."""
  options = _conv_options(5, (4, 4))
  x = _normal((2, 8, 8, 6), seed=0)
  variables = _random_variables(options, x, reference=nn.Conv)

  def penalty_gradient(module, variables):
    def penalty(variables):
      gradient = jax.grad(lambda x: jnp.sum(jnp.tanh(module.apply(variables, x))))(x)
      return jnp.sum(gradient ** 2)
    return jax.grad(penalty)(variables)

  def both(variables):
    return (penalty_gradient(PhaseGradientConv(**options), variables),
            penalty_gradient(nn.Conv(**options), variables))

  jax.tree.map(_assert_close, *_compiled(both, variables)(variables))


@pytest.mark.parametrize("layer,dilated", [(PhaseGradientConv, False), (nn.Conv, True)])
def test_phase_gradient_conv_input_derivative_has_no_dilated_convolution(layer, dilated):
  """The reference's input derivative convolves a cotangent dilated by zeros;
  PhaseGradientConv's does not."""
  options = _conv_options(8, (4, 4))
  x = _normal((2, 8, 8, 6), seed=0)
  variables = _random_variables(options, x, reference=nn.Conv)
  jaxpr = str(jax.make_jaxpr(jax.grad(lambda x: jnp.sum(layer(**options).apply(variables, x))))(x))
  assert ("lhs_dilation=(2, 2)" in jaxpr) == dilated


@pytest.mark.parametrize("extra", [
    dict(strides=1), dict(padding="VALID"), dict(kernel_dilation=2),
    dict(feature_group_count=3), dict(kernel_size=(1, 1)),
])
def test_phase_gradient_conv_other_settings_run_conv(extra):
  options = {**_conv_options(6, (3, 3)), **extra}
  x = _normal((2, 6, 6, 3), seed=0)
  variables = _random_variables(options, x, reference=nn.Conv)
  np.testing.assert_array_equal(PhaseGradientConv(**options).apply(variables, x),
                                nn.Conv(**options).apply(variables, x))


def test_phase_gradient_conv_odd_sides_run_conv():
  """"SAME" on an odd side pads unevenly; the phases would not be exact."""
  options = _conv_options(6, (4, 4))
  x = _normal((2, 7, 7, 3), seed=0)
  variables = _random_variables(options, x, reference=nn.Conv)
  jaxpr = str(jax.make_jaxpr(jax.grad(lambda x: jnp.sum(
      PhaseGradientConv(**options).apply(variables, x))))(x))
  assert "lhs_dilation=(2, 2)" in jaxpr  # the reference's own derivative


class _Downsampler(nn.Module):
  """Two unnamed strided convolutions, as in the DCGAN discriminator."""
  conv: str

  @nn.compact
  def __call__(self, x):
    layer = conv_layer(self.conv)
    x = layer(6, (4, 4), strides=(2, 2), padding="SAME")(x)
    return layer(8, (4, 4), strides=(2, 2), padding="SAME", use_bias=False)(nn.relu(x))


def test_phase_gradient_conv_initialises_as_conv():
  x = jnp.ones((1, 8, 8, 3))
  key = jax.random.key(3, impl="rbg")
  xla, phase = (_compiled(_Downsampler(name).init, key, x)(key, x) for name in ("xla", "phase"))
  assert jax.tree.map(jnp.shape, phase) == {"params": {
      "Conv_0": {"kernel": (4, 4, 3, 6), "bias": (6,)}, "Conv_1": {"kernel": (4, 4, 6, 8)}}}
  jax.tree.map(np.testing.assert_array_equal, phase, xla)
  assert float(jnp.std(phase["params"]["Conv_1"]["kernel"])) > 0.01


def test_the_environment_overrides_the_backends_forms(monkeypatch):
  monkeypatch.setenv(backend.KERNEL_FORMS_ENV, "phase")
  assert backend.kernel_form(backend.CONV, "gpu") == "phase"
  assert conv_transpose_layer() is PhaseConvTranspose
  monkeypatch.setenv(backend.KERNEL_FORMS_ENV, "xla")
  assert backend.record("cpu")["kernel_forms"] == {"conv": "xla", "conv_transpose": "xla"}
  monkeypatch.setenv(backend.KERNEL_FORMS_ENV, "fft")
  with pytest.raises(ConfigError, match="GAN_JAX_KERNEL_FORMS='fft'.*xla, phase"):
    conv_layer()


def test_unknown_conv_implementation_is_a_config_error():
  with pytest.raises(ConfigError, match="phase, xla"):
    conv_layer("fft")


def test_the_backend_chooses_the_forms_and_the_config_cannot_name_them(monkeypatch):
  """Unset, a model's forms are gan_jax.backend's: on CPU the phase forms
  every shipped config named before, elsewhere XLA's own. No config entry
  holds them, and a model's config entry cannot set them."""
  monkeypatch.delenv(backend.KERNEL_FORMS_ENV)
  assert jax.default_backend() == "cpu"
  assert conv_transpose_layer() is PhaseConvTranspose and conv_layer() is PhaseGradientConv
  assert backend.record()["kernel_forms"] == {"conv": "phase", "conv_transpose": "phase"}
  assert {backend.kernel_form(kind, platform) for kind in (backend.CONV, backend.CONV_TRANSPOSE)
          for platform in ("gpu", "tpu")} == {"xla"}
  for registry, name, kind in ((GENERATORS, "dcgan", backend.CONV_TRANSPOSE),
                               (DISCRIMINATORS, "dcgan", backend.CONV),
                               (DECODERS, "conv", backend.CONV_TRANSPOSE)):
    assert kind in {f.name for f in dataclasses.fields(registry.get(name))}
    assert kind not in module_config(registry, name)
  with pytest.raises(ConfigError, match="conv_transpose"):
    build_module(GENERATORS, "dcgan", {"conv_transpose": "xla"}, output_shape=(28, 28, 1))
