"""Adversarial losses checked against hand-written NumPy formulas.

The references are written in terms of probabilities (sigmoid computed as
1 / (1 + exp(-x))) and never call the library's helpers.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax.losses import ADVERSARIAL_LOSSES, LossPair, get_loss
from gan_jax.registry import ConfigError

ALL_LOSSES = ["hinge", "least_squares", "minimax", "non_saturating",
              "relativistic_average", "wasserstein"]
SMOOTHABLE = ["least_squares", "minimax", "non_saturating", "relativistic_average"]

# Hand-picked outputs: mixed signs, a zero, values on both sides of the hinge
# margins (+-1), unequal batch sizes are not used (losses share one batch).
D_REAL = np.array([2.0, -0.5, 0.0, 1.5, 0.3], np.float64)
D_FAKE = np.array([-1.0, 0.7, -2.5, 0.0, 1.2], np.float64)


def sigmoid(x):
  return 1.0 / (1.0 + np.exp(-np.asarray(x, np.float64)))


def ref_losses(name, r, f, red=np.mean, s=0.0):
  """(D loss, G loss) from the papers' formulas; `red` is the batch average."""
  t = 1.0 - s  # the real label
  if name in ("minimax", "non_saturating"):
    pr, pf = sigmoid(r), sigmoid(f)
    d = red(-t * np.log(pr) - (1.0 - t) * np.log(1.0 - pr)) + red(-np.log(1.0 - pf))
    if name == "minimax":
      g = red(np.log(1.0 - pf))
    else:
      g = red(-np.log(pf))
    return d, g
  if name == "wasserstein":
    return red(f) - red(r), -red(f)
  if name == "hinge":
    return red(np.maximum(0.0, 1.0 - r)) + red(np.maximum(0.0, 1.0 + f)), -red(f)
  if name == "least_squares":
    return 0.5 * red((r - t) ** 2) + 0.5 * red(f ** 2), 0.5 * red((f - 1.0) ** 2)
  if name == "relativistic_average":
    # Jolicoeur-Martineau (2018), RaSGAN:
    #   D: -E_r log D~(x_r) - E_f log(1 - D~(x_f))
    #   G: -E_f log D~(x_f) - E_r log(1 - D~(x_r))
    # with D~(x_r) = sigmoid(C(x_r) - E C(x_f)), D~(x_f) = sigmoid(C(x_f) - E C(x_r)).
    p_real = sigmoid(r - red(f))
    p_fake = sigmoid(f - red(r))
    d = (red(-t * np.log(p_real) - (1.0 - t) * np.log(1.0 - p_real))
         + red(-np.log(1.0 - p_fake)))
    g = red(-np.log(p_fake)) + red(-np.log(1.0 - p_real))
    return d, g
  raise AssertionError(name)


def call(name, r, f, **kw):
  # One jitted program per call compiles far faster than eager op-by-op dispatch.
  fn = ADVERSARIAL_LOSSES.get(name).fn
  return jax.jit(lambda r, f: fn(r, f, **kw))(
      jnp.asarray(r, jnp.float32), jnp.asarray(f, jnp.float32))


def test_registry_holds_the_documented_losses():
  # Others may register more (plugins); the documented ones must all be there.
  assert set(ALL_LOSSES) <= set(ADVERSARIAL_LOSSES.names())


@pytest.mark.parametrize("name", ALL_LOSSES)
def test_losses_match_closed_form(name):
  out = call(name, D_REAL, D_FAKE)
  assert isinstance(out, LossPair)
  d_ref, g_ref = ref_losses(name, D_REAL, D_FAKE)
  np.testing.assert_allclose(float(out.discriminator), d_ref, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(float(out.generator), g_ref, rtol=1e-5, atol=1e-6)
  assert out.discriminator.shape == () and out.generator.shape == ()


@pytest.mark.parametrize("name", ALL_LOSSES)
def test_every_batch_average_goes_through_batch_mean(name):
  # With a sum in place of the mean every average (and RaSGAN's centring)
  # must change accordingly; a hard-coded jnp.mean anywhere would show.
  out = call(name, D_REAL, D_FAKE, batch_mean=jnp.sum)
  d_ref, g_ref = ref_losses(name, D_REAL, D_FAKE, red=np.sum)
  np.testing.assert_allclose(float(out.discriminator), d_ref, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(float(out.generator), g_ref, rtol=1e-5, atol=1e-5)


def test_hand_computed_values_for_simple_inputs():
  # Fully by hand, for r = [2, 0], f = [-1, 3]:
  r, f = np.array([2.0, 0.0]), np.array([-1.0, 3.0])
  # WGAN: D = mean f - mean r = 1 - 1 = 0; G = -1.
  w = call("wasserstein", r, f)
  assert float(w.discriminator) == pytest.approx(0.0, abs=1e-6)
  assert float(w.generator) == pytest.approx(-1.0)
  # Hinge: relu(1-r) = [0, 1] -> 0.5; relu(1+f) = [0, 4] -> 2; D = 2.5, G = -1.
  h = call("hinge", r, f)
  assert float(h.discriminator) == pytest.approx(2.5)
  assert float(h.generator) == pytest.approx(-1.0)
  # LSGAN: 0.5*mean([1, 1]) + 0.5*mean([1, 9]) = 0.5 + 2.5 = 3; G = 0.5*mean([4, 4]) = 2.
  ls = call("least_squares", r, f)
  assert float(ls.discriminator) == pytest.approx(3.0)
  assert float(ls.generator) == pytest.approx(2.0)


@pytest.mark.parametrize("name", ["minimax", "non_saturating"])
def test_equilibrium_discriminator_loss_is_two_log_two(name):
  # D outputs p = 0.5 (logit 0) on both real and fake: D loss = 2 log 2.
  zeros = np.zeros(4)
  out = call(name, zeros, zeros)
  assert float(out.discriminator) == pytest.approx(2 * np.log(2.0), rel=1e-6)
  # G: minimax is log(1 - 0.5) = -log 2; non-saturating is -log 0.5 = log 2.
  expected_g = -np.log(2.0) if name == "minimax" else np.log(2.0)
  assert float(out.generator) == pytest.approx(expected_g, rel=1e-6)


def test_relativistic_equilibrium():
  # Equal critic values: both relative logits are 0, each term is log 2.
  c = np.full(3, 0.8)
  out = call("relativistic_average", c, c)
  assert float(out.discriminator) == pytest.approx(2 * np.log(2.0), rel=1e-6)
  assert float(out.generator) == pytest.approx(2 * np.log(2.0), rel=1e-6)


def test_generator_gradients_minimax_saturates_non_saturating_does_not():
  f = np.array([-30.0, -10.0, 0.0, 2.0])
  n = len(f)
  r = jnp.zeros(n)

  def g_grad(name):
    fn = ADVERSARIAL_LOSSES.get(name).fn
    return np.asarray(jax.jit(jax.grad(lambda x: fn(r, x).generator))(
        jnp.asarray(f, jnp.float32)))

  mm, ns = g_grad("minimax"), g_grad("non_saturating")
  # d/df mean log(1 - sigmoid(f)) = -sigmoid(f) / n.
  np.testing.assert_allclose(mm, -sigmoid(f) / n, rtol=1e-4, atol=1e-12)
  # d/df -mean log sigmoid(f) = -(1 - sigmoid(f)) / n.
  np.testing.assert_allclose(ns, -(1.0 - sigmoid(f)) / n, rtol=1e-4, atol=1e-7)
  # Both push d_fake up (negative gradient of a minimised loss).
  assert np.all(mm <= 0) and np.all(ns < 0)
  # Saturation: when D confidently rejects fakes (f -> -inf) minimax's
  # gradient vanishes while the non-saturating one tends to -1/n.
  assert abs(mm[0]) < 1e-12 and abs(mm[1]) < 2e-5
  assert ns[0] == pytest.approx(-1.0 / n, rel=1e-5)
  assert ns[1] == pytest.approx(-1.0 / n, rel=1e-4)
  assert abs(ns[1]) > 1e3 * abs(mm[1])


@pytest.mark.parametrize("name,grad_ref", [
    ("wasserstein", lambda f, n: np.full_like(f, -1.0 / n)),
    ("hinge", lambda f, n: np.full_like(f, -1.0 / n)),
    ("least_squares", lambda f, n: (f - 1.0) / n),
])
def test_generator_gradient_wrt_d_fake(name, grad_ref):
  f = np.array([-1.0, 0.5, 3.0])
  fn = ADVERSARIAL_LOSSES.get(name).fn
  g = jax.jit(jax.grad(lambda x: fn(jnp.zeros(3), x).generator))(
      jnp.asarray(f, jnp.float32))
  np.testing.assert_allclose(np.asarray(g), grad_ref(f, len(f)), rtol=1e-5, atol=1e-7)


def test_stable_for_large_logits():
  # The formulas must not overflow to inf/nan for confident discriminators.
  r = np.array([80.0, -80.0])
  f = np.array([-80.0, 80.0])
  for name in ALL_LOSSES:
    out = call(name, r, f)
    assert np.isfinite(float(out.discriminator)), name
    assert np.isfinite(float(out.generator)), name
  # -log sigmoid(-80) = 80 (to float precision): D loss for minimax is
  # mean([~0, 80]) + mean([~0, 80]) = 80.
  assert float(call("minimax", r, f).discriminator) == pytest.approx(80.0, rel=1e-5)


# --- label smoothing -------------------------------------------------------

@pytest.mark.parametrize("name", ALL_LOSSES)
def test_get_loss_without_smoothing(name):
  loss, real_target = get_loss(name)
  assert loss is ADVERSARIAL_LOSSES.get(name)
  assert real_target == 1.0


@pytest.mark.parametrize("name", SMOOTHABLE)
def test_get_loss_with_smoothing_returns_one_minus_s(name):
  loss, real_target = get_loss(name, 0.1)
  assert loss.label_smoothing
  assert real_target == pytest.approx(0.9)


@pytest.mark.parametrize("name", SMOOTHABLE)
def test_smoothed_losses_match_closed_form(name):
  s = 0.2
  loss, real_target = get_loss(name, s)
  out = call(name, D_REAL, D_FAKE, real_target=real_target)
  d_ref, g_ref = ref_losses(name, D_REAL, D_FAKE, s=s)
  np.testing.assert_allclose(float(out.discriminator), d_ref, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(float(out.generator), g_ref, rtol=1e-5, atol=1e-6)
  # And smoothing really changes the discriminator's loss.
  d_unsmoothed, _ = ref_losses(name, D_REAL, D_FAKE)
  assert abs(float(out.discriminator) - d_unsmoothed) > 1e-3


def test_smoothed_bce_by_hand():
  # One real logit r = 1, s = 0.1, fake logit -> -inf contributes ~0:
  # -(0.9) log sigma(1) - 0.1 log(1 - sigma(1)).
  s, r = 0.1, 1.0
  loss, t = get_loss("non_saturating", s)
  out = call("non_saturating", [r], [-200.0], real_target=t)
  p = 1.0 / (1.0 + np.exp(-r))
  expected = -(1 - s) * np.log(p) - s * np.log(1 - p)
  assert float(out.discriminator) == pytest.approx(expected, rel=1e-6)
  # Under smoothing the D loss on reals is minimised at sigma(r) = 1 - s,
  # not at r -> +inf.
  grad_at_target = jax.jit(jax.grad(
      lambda x: loss.fn(x, jnp.array([-200.0]), real_target=t).discriminator))(
      jnp.array([np.log((1 - s) / s)], jnp.float32))
  assert abs(float(grad_at_target[0])) < 1e-6


@pytest.mark.parametrize("name", ["hinge", "wasserstein"])
def test_smoothing_rejected_for_losses_without_a_real_label(name):
  with pytest.raises(ConfigError) as err:
    get_loss(name, 0.1)
  msg = str(err.value)
  assert name in msg
  for ok in SMOOTHABLE:
    assert ok in msg
  # Only the losses that take smoothing are offered.
  listed = msg.split("label_smoothing:")[-1]
  assert "hinge" not in listed and "wasserstein" not in listed


@pytest.mark.parametrize("s", [-0.1, 1.0, 1.5])
def test_smoothing_out_of_range_rejected(s):
  with pytest.raises(ConfigError, match="label_smoothing"):
    get_loss("minimax", s)


def test_unknown_loss_lists_all_valid_names():
  with pytest.raises(ConfigError) as err:
    get_loss("non_saturatng")
  msg = str(err.value)
  assert "non_saturatng" in msg
  for name in ALL_LOSSES:
    assert name in msg


def test_to_probability_is_sigmoid_for_bce_losses_and_absent_for_critics():
  x = np.array([-2.0, 0.0, 3.0])
  for name in ("minimax", "non_saturating"):
    p = jax.jit(ADVERSARIAL_LOSSES.get(name).to_probability)(jnp.asarray(x))
    np.testing.assert_allclose(np.asarray(p), sigmoid(x), rtol=1e-6)
  for name in ("wasserstein", "hinge"):
    assert ADVERSARIAL_LOSSES.get(name).to_probability is None
