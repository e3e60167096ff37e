"""Regularisers checked on discriminators whose input gradients are known."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax.regularizers import REGULARIZERS, clip_weights, gradient_penalty, r1_penalty

RNG = np.random.default_rng(0)
REAL = RNG.normal(size=(6, 3)).astype(np.float32)
FAKE = RNG.normal(size=(6, 3)).astype(np.float32)
T = np.array([0.0, 0.25, 0.5, 0.8, 1.0, 0.1], np.float32)


def run(reg, d, real, fake, t, **kw):
  """Calls a regulariser as one jitted program (much faster than eager dispatch)."""
  return jax.jit(lambda a, b, c: reg(d, a, b, c, **kw))(
      jnp.asarray(real, jnp.float32), jnp.asarray(fake, jnp.float32),
      jnp.asarray(t, jnp.float32))


def linear_d(w):
  """D(x) = <x, w> per example: its input gradient is w everywhere."""
  w = jnp.asarray(w)
  return lambda x: jnp.sum(jnp.reshape(x, (x.shape[0], -1)) * jnp.reshape(w, (1, -1)), axis=1)


def test_registry_holds_the_documented_regularizers():
  assert {"gradient_penalty", "r1"} <= set(REGULARIZERS.names())
  assert REGULARIZERS.get("gradient_penalty").fn is gradient_penalty
  assert REGULARIZERS.get("r1").fn is r1_penalty


@pytest.mark.parametrize("w", [[3.0, 4.0, 0.0], [0.6, 0.0, 0.8], [0.1, -0.2, 0.05]])
def test_gradient_penalty_linear_discriminator(w):
  w = np.asarray(w, np.float32)
  gp = float(run(gradient_penalty, linear_d(w), jnp.asarray(REAL), jnp.asarray(FAKE),
                              jnp.asarray(T)))
  expected = (np.sqrt(np.sum(np.asarray(w, np.float64) ** 2)) - 1.0) ** 2
  assert gp == pytest.approx(expected, rel=1e-5, abs=1e-6)


def test_gradient_penalty_linear_on_image_shaped_inputs():
  # Per-example gradient norms over all non-batch axes: ||w|| = 5 -> 16.
  w = np.zeros((2, 2, 2), np.float32)
  w[0, 0, 0], w[1, 1, 1] = 3.0, 4.0
  real = RNG.normal(size=(4, 2, 2, 2)).astype(np.float32)
  fake = RNG.normal(size=(4, 2, 2, 2)).astype(np.float32)
  gp = run(gradient_penalty, linear_d(w), jnp.asarray(real), jnp.asarray(fake),
                        jnp.asarray([0.3, 0.6, 0.9, 0.0]))
  assert float(gp) == pytest.approx(16.0, rel=1e-5)


def test_gradient_penalty_quadratic_discriminator_at_interpolates():
  # D(x) = sum(x^2): grad at x_hat is 2 x_hat, norm 2 ||x_hat||.
  d = lambda x: jnp.sum(x ** 2, axis=1)
  gp = float(run(gradient_penalty, d, jnp.asarray(REAL), jnp.asarray(FAKE), jnp.asarray(T)))
  real, fake, t = (np.asarray(a, np.float64) for a in (REAL, FAKE, T))
  x_hat = t[:, None] * real + (1.0 - t[:, None]) * fake
  norms = 2.0 * np.sqrt(np.sum(x_hat ** 2, axis=1))
  expected = np.mean((norms - 1.0) ** 2)
  assert gp == pytest.approx(expected, rel=1e-5)
  # The interpolation weight t multiplies *real* (t = 1 -> real): swapping
  # real and fake gives a different value on this asymmetric t.
  swapped = float(run(gradient_penalty, d, jnp.asarray(FAKE), jnp.asarray(REAL), jnp.asarray(T)))
  assert abs(swapped - expected) > 1e-3


def test_gradient_penalty_endpoints():
  # t = 1 evaluates at real points, t = 0 at fake points.
  d = lambda x: jnp.sum(x ** 2, axis=1)
  real = np.array([[1.0, 0.0], [0.0, 2.0]], np.float32)
  fake = np.array([[0.0, 0.25], [3.0, 4.0]], np.float32)
  gp_real = run(gradient_penalty, d, jnp.asarray(real), jnp.asarray(fake), jnp.ones(2))
  gp_fake = run(gradient_penalty, d, jnp.asarray(real), jnp.asarray(fake), jnp.zeros(2))
  # real norms: 2*1, 2*2 -> ((2-1)^2 + (4-1)^2)/2 = 5
  assert float(gp_real) == pytest.approx(5.0, rel=1e-5)
  # fake norms: 2*0.25, 2*5 -> ((0.5-1)^2 + (10-1)^2)/2 = 40.625
  assert float(gp_fake) == pytest.approx(40.625, rel=1e-5)


def test_gradient_penalty_is_differentiable_wrt_discriminator_params():
  # d/dw (||w|| - 1)^2 = 2 (||w|| - 1) w / ||w||.
  w = jnp.array([3.0, 4.0, 0.0])
  g = jax.jit(jax.grad(lambda w: gradient_penalty(
      linear_d(w), jnp.asarray(REAL), jnp.asarray(FAKE), jnp.asarray(T))))(w)
  np.testing.assert_allclose(np.asarray(g), 2 * (5.0 - 1.0) * np.array([3, 4, 0]) / 5.0,
                             rtol=1e-5)


@pytest.mark.parametrize("w", [[3.0, 4.0, 0.0], [0.1, -0.2, 0.05]])
def test_r1_linear_discriminator(w):
  w = np.asarray(w, np.float32)
  r1 = float(run(r1_penalty, linear_d(w), jnp.asarray(REAL), jnp.asarray(FAKE), jnp.asarray(T)))
  assert r1 == pytest.approx(0.5 * np.sum(np.asarray(w, np.float64) ** 2), rel=1e-5)


def test_r1_quadratic_discriminator():
  # D(x) = 0.5 sum(x^2): grad = x, so R1 = 0.5 mean ||x_real||^2.
  d = lambda x: 0.5 * jnp.sum(x ** 2, axis=1)
  r1 = float(run(r1_penalty, d, jnp.asarray(REAL), jnp.asarray(FAKE), jnp.asarray(T)))
  expected = 0.5 * np.mean(np.sum(np.asarray(REAL, np.float64) ** 2, axis=1))
  assert r1 == pytest.approx(expected, rel=1e-5)


def test_r1_uses_only_real_data():
  d = lambda x: 0.5 * jnp.sum(x ** 2, axis=1)
  a = run(r1_penalty, d, jnp.asarray(REAL), jnp.asarray(FAKE), jnp.asarray(T))
  b = run(r1_penalty, d, jnp.asarray(REAL), FAKE * 10.0, jnp.zeros(6))
  assert float(a) == float(b)
  c = run(r1_penalty, d, REAL * 2.0, jnp.asarray(FAKE), jnp.asarray(T))
  assert float(c) == pytest.approx(4.0 * float(a), rel=1e-5)


@pytest.mark.parametrize("reg", [gradient_penalty, r1_penalty])
def test_batch_mean_defaults_to_plain_mean(reg):
  d = lambda x: jnp.sum(x ** 2, axis=1)
  args = (reg, d, REAL, FAKE, T)
  default = float(run(*args))
  explicit = float(run(*args, batch_mean=jnp.mean))
  summed = float(run(*args, batch_mean=jnp.sum))
  assert default == pytest.approx(explicit, rel=1e-6)
  # The keyword is really used: a sum over 6 examples is 6x the mean.
  assert summed == pytest.approx(6.0 * default, rel=1e-5)


def test_clip_weights_clamps_every_leaf():
  params = {
      "dense": {"kernel": jnp.array([[-2.0, -0.01], [0.005, 0.5]]),
                "bias": jnp.array([0.01, -0.01, 0.0])},
      "out": [jnp.array(3.0), jnp.array([-0.004, 0.009])],
  }
  c = 0.01
  clipped = clip_weights(params, c)
  assert jax.tree.structure(clipped) == jax.tree.structure(params)
  np.testing.assert_array_equal(np.asarray(clipped["dense"]["kernel"]),
                                np.array([[-0.01, -0.01], [0.005, 0.01]], np.float32))
  # In-range values (including the bounds themselves) are untouched, bit for bit.
  np.testing.assert_array_equal(np.asarray(clipped["dense"]["bias"]),
                                np.asarray(params["dense"]["bias"]))
  np.testing.assert_array_equal(np.asarray(clipped["out"][1]),
                                np.asarray(params["out"][1]))
  assert float(clipped["out"][0]) == pytest.approx(0.01)
  for leaf in jax.tree.leaves(clipped):
    assert np.all(np.abs(np.asarray(leaf)) <= c + 1e-9)


def test_clip_weights_leaves_in_range_tree_unchanged():
  params = {"w": jnp.asarray(RNG.uniform(-0.5, 0.5, size=(4, 4)).astype(np.float32))}
  out = clip_weights(params, 0.5)
  np.testing.assert_array_equal(np.asarray(out["w"]), np.asarray(params["w"]))
  tighter = clip_weights(params, 0.1)
  assert np.max(np.abs(np.asarray(tighter["w"]))) == pytest.approx(0.1)
