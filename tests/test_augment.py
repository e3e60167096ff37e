"""DiffAugment checked against numpy references on given parameters."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import Mesh, PartitionSpec as P

from gan_jax.augment import (AUGMENTATIONS, apply_augmentation, draw_augmentation,
                             parse_policy)
from gan_jax.registry import ConfigError

RNG = np.random.default_rng(0)
IMAGES = RNG.uniform(-1, 1, size=(4, 8, 8, 3)).astype(np.float32)
FULL_POLICY = "color,translation,cutout"


# Jitted once, so repeated shapes reuse the compiled program.
augment = jax.jit(apply_augmentation, static_argnums=2)
# Draws stay eager and share one batch size: each random op then compiles once
# for the whole file (about a second per op on CPU).
DRAW_BATCH = 64


def grad_of_weighted_sum(images, params, policy, weights):
  """d/dx sum(weights * augment(x)), as a generator's gradient would see it."""
  def objective(x):
    return jnp.sum(jnp.asarray(weights) * apply_augmentation(x, params, policy))
  return np.asarray(jax.jit(jax.grad(objective))(jnp.asarray(images)))


def shift_reference(image, dy, dx):
  """np.roll, with the pixels that wrapped around set to 0 instead."""
  out = np.roll(image, (dy, dx), axis=(0, 1))
  if dy > 0:
    out[:dy] = 0
  elif dy < 0:
    out[dy:] = 0
  if dx > 0:
    out[:, :dx] = 0
  elif dx < 0:
    out[:, dx:] = 0
  return out


def cutout_reference(image, top, left, size):
  out = image.copy()
  out[max(top, 0):max(top + size[0], 0), max(left, 0):max(left + size[1], 0)] = 0
  return out


def color_reference(image, brightness, saturation, contrast):
  x = image.astype(np.float64) + brightness
  channel_mean = x.mean(axis=-1, keepdims=True)
  x = channel_mean + saturation * (x - channel_mean)
  return x.mean() + contrast * (x - x.mean())


COLOR_PARAMS = {"brightness": np.array([0.0, 0.3, -0.5, 0.1], np.float32),
                "saturation": np.array([1.0, 0.0, 1.7, 0.4], np.float32),
                "contrast": np.array([1.0, 0.5, 1.2, 1.49], np.float32)}
SHIFTS = np.array([[0, 0], [2, -1], [-3, 3], [8, 0]], np.int32)
CORNERS = np.array([[0, 0], [-2, 6], [6, 6], [3, 2]], np.int32)


def test_registry_names():
  assert AUGMENTATIONS.names() == ["color", "cutout", "translation"]


@pytest.mark.parametrize("policy", ["", (), " , "])
def test_empty_policy_is_identity(policy):
  params = draw_augmentation(jax.random.PRNGKey(0), 4, (8, 8, 3), policy)
  assert params == {}
  assert apply_augmentation(IMAGES, params, policy) is IMAGES


def test_policy_string_and_tuple_agree():
  assert parse_policy(" color, cutout ") == ("color", "cutout")
  assert parse_policy(("color", "cutout")) == ("color", "cutout")


def test_unknown_name_lists_valid_names():
  with pytest.raises(ConfigError, match="'flip'.*Valid names: color, cutout, translation"):
    draw_augmentation(jax.random.PRNGKey(0), 4, (8, 8, 3), "color,flip")
  with pytest.raises(ConfigError, match="Valid names"):
    apply_augmentation(IMAGES, {}, ("translate",))


def test_bad_policies_and_shapes_are_rejected():
  with pytest.raises(ConfigError, match="twice"):
    parse_policy("cutout,color,cutout")
  with pytest.raises(ConfigError, match=r"\(H, W, C\)"):
    draw_augmentation(jax.random.PRNGKey(0), 4, (2,), "color")


def test_translation_matches_roll_with_zero_fill():
  out = np.asarray(augment(IMAGES, {"translation": {"shift": SHIFTS}}, "translation"))
  for k, (dy, dx) in enumerate(SHIFTS):
    np.testing.assert_array_equal(out[k], shift_reference(IMAGES[k], dy, dx))
  assert not out[3].any()  # shifted by the full height


def test_translation_gradient_is_the_mask_of_pixels_kept_in_view():
  params = {"translation": {"shift": SHIFTS}}
  grad = grad_of_weighted_sum(IMAGES, params, "translation", np.ones_like(IMAGES))
  rows, cols = np.arange(8)[:, None], np.arange(8)[None, :]
  for k, (dy, dx) in enumerate(SHIFTS):
    in_view = (rows + dy >= 0) & (rows + dy < 8) & (cols + dx >= 0) & (cols + dx < 8)
    np.testing.assert_array_equal(grad[k], np.repeat(in_view[..., None], 3, axis=-1))


@pytest.mark.parametrize("shape, size", [((8, 8), (4, 4)), ((7, 5), (4, 3))])
def test_cutout_zeroes_exactly_the_square(shape, size):
  images = RNG.uniform(0.1, 1, size=(4, *shape, 3)).astype(np.float32)  # no zeros
  params = {"cutout": {"corner": CORNERS}}
  out = np.asarray(augment(images, params, "cutout"))
  grad = grad_of_weighted_sum(images, params, "cutout", np.ones_like(images))
  for k, (top, left) in enumerate(CORNERS):
    expected = cutout_reference(images[k], top, left, size)
    np.testing.assert_array_equal(out[k], expected)
    np.testing.assert_array_equal(grad[k], (expected != 0).astype(np.float32))
  if shape == (8, 8):
    # Whole square, clipped to 2 x 2 twice, whole square.
    assert [int((out[k] == 0).all(-1).sum()) for k in range(4)] == [16, 4, 4, 16]


def test_color_matches_closed_forms():
  out = np.asarray(augment(IMAGES, {"color": COLOR_PARAMS}, "color"))
  for k in range(4):
    expected = color_reference(IMAGES[k], *(COLOR_PARAMS[n][k] for n in
                                            ("brightness", "saturation", "contrast")))
    np.testing.assert_allclose(out[k], expected, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(out[0], IMAGES[0], atol=1e-6)  # neutral parameters
  np.testing.assert_allclose(out[1], out[1][..., :1].repeat(3, -1))  # saturation 0: grey


def test_color_gradients_match_closed_forms():
  weights = RNG.normal(size=IMAGES.shape).astype(np.float32)
  s, c = 1.7, 0.6
  neutral = np.ones(4, np.float32)
  # Saturation: d/dx_k sum_j w_j (m + s (x_j - m)) = s w_k + (1 - s) mean_c(w).
  params = {"color": {"brightness": np.zeros(4, np.float32), "saturation": s * neutral,
                      "contrast": neutral}}
  grad = grad_of_weighted_sum(IMAGES, params, "color", weights)
  expected = s * weights + (1 - s) * weights.mean(axis=-1, keepdims=True)
  np.testing.assert_allclose(grad, expected, rtol=1e-5, atol=1e-5)
  # Contrast: the same with the mean over H, W, C.
  params["color"].update(saturation=neutral, contrast=c * neutral)
  grad = grad_of_weighted_sum(IMAGES, params, "color", weights)
  expected = c * weights + (1 - c) * weights.mean(axis=(1, 2, 3), keepdims=True)
  np.testing.assert_allclose(grad, expected, rtol=1e-5, atol=1e-5)


def test_full_policy_gradient_is_the_adjoint_of_the_numpy_reference():
  # For fixed parameters the policy is affine, f(x) = A x + b, so
  # <w, f(x + e) - f(x)> = <A^T w, e> = <grad, e>, with f from numpy.
  params = {"color": COLOR_PARAMS, "translation": {"shift": SHIFTS},
            "cutout": {"corner": CORNERS}}

  def reference(images):
    out = []
    for k in range(4):
      x = color_reference(images[k], *(COLOR_PARAMS[n][k] for n in
                                       ("brightness", "saturation", "contrast")))
      x = shift_reference(x, *SHIFTS[k])
      out.append(cutout_reference(x, *CORNERS[k], (4, 4)))
    return np.stack(out)

  weights = RNG.normal(size=IMAGES.shape)
  step = RNG.normal(size=IMAGES.shape)
  grad = grad_of_weighted_sum(IMAGES, params, FULL_POLICY, weights.astype(np.float32))
  assert np.isfinite(grad).all() and np.abs(grad[:3]).sum(axis=(1, 2, 3)).min() > 0
  change = np.sum(weights * (reference(IMAGES + step) - reference(IMAGES)))
  assert np.sum(grad * step) == pytest.approx(change, rel=1e-4)
  np.testing.assert_allclose(augment(IMAGES, params, FULL_POLICY), reference(IMAGES),
                             rtol=1e-5, atol=1e-5)


def test_draws_have_the_documented_shapes_and_ranges():
  params = draw_augmentation(jax.random.PRNGKey(1), DRAW_BATCH, (32, 32, 3), FULL_POLICY)
  b = DRAW_BATCH
  assert jax.tree.map(lambda a: (a.shape, a.dtype.kind), params) == {
      "color": {"brightness": ((b,), "f"), "saturation": ((b,), "f"),
                "contrast": ((b,), "f")},
      "translation": {"shift": ((b, 2), "i")},
      "cutout": {"corner": ((b, 2), "i")}}
  color = params["color"]
  for name, low, high in (("brightness", -0.5, 0.5), ("saturation", 0, 2),
                          ("contrast", 0.5, 1.5)):
    assert low <= float(color[name].min()) and float(color[name].max()) < high
  # 32 / 8 = 4 pixels; each value has chance 1/9 in each of 128 draws, so all appear.
  assert set(np.unique(params["translation"]["shift"])) == set(range(-4, 5))
  # Even side 16: centre in [0, 32], corner = centre - 8.
  corner = np.asarray(params["cutout"]["corner"])
  assert corner.min() >= -8 and corner.max() <= 24 and corner.max() > 16


def test_adding_an_augmentation_keeps_the_others_draws():
  key = jax.random.PRNGKey(2)
  alone = draw_augmentation(key, DRAW_BATCH, (8, 8, 3), "color")
  together = draw_augmentation(key, DRAW_BATCH, (8, 8, 3), "translation,color")
  jax.tree.map(np.testing.assert_array_equal, alone["color"], together["color"])


def test_four_shards_equal_the_whole_batch():
  images = RNG.uniform(-1, 1, size=(DRAW_BATCH, 8, 8, 3)).astype(np.float32)
  params = draw_augmentation(jax.random.PRNGKey(3), DRAW_BATCH, (8, 8, 3), FULL_POLICY)
  whole = np.asarray(augment(images, params, FULL_POLICY))
  shard = DRAW_BATCH // 4
  shards = [augment(images[i:i + shard], jax.tree.map(lambda a, i=i: a[i:i + shard], params),
                    FULL_POLICY) for i in range(0, DRAW_BATCH, shard)]
  np.testing.assert_allclose(np.concatenate(shards), whole, rtol=1e-6, atol=1e-6)

  # The same through shard_map on the 4 forced devices, as the train step runs it.
  mesh = Mesh(np.asarray(jax.devices()[:4]), ("data",))
  sharded = jax.jit(jax.shard_map(lambda x, p: apply_augmentation(x, p, FULL_POLICY),
                                  mesh=mesh, in_specs=(P("data"), P("data")),
                                  out_specs=P("data")))
  np.testing.assert_allclose(sharded(images, params), whole, rtol=1e-6, atol=1e-6)
