"""Image grids, PNG/GIF files and latent interpolation, checked pixel by pixel."""

import numpy as np
import pytest
from PIL import Image

from gan_jax.latents import interpolation_latents
from gan_jax.plots import image_grid, save_gif, save_png, to_uint8

RNG = np.random.default_rng(0)


def test_value_range_mapping():
  np.testing.assert_array_equal(to_uint8(np.array([-1.0, 0.0, 1.0])), [0, 128, 255])
  np.testing.assert_array_equal(to_uint8(np.array([0.0, 0.5, 1.0]), value_range=(0, 1)),
                                [0, 128, 255])
  np.testing.assert_array_equal(to_uint8(np.array([-3.0, 2.0])), [0, 255])  # clipped


def test_grid_puts_image_k_in_row_k_div_cols_column_k_mod_cols():
  images = RNG.uniform(-1, 1, size=(5, 3, 4, 3)).astype(np.float32)
  grid = image_grid(images, cols=3, padding=1, background=255)
  # rows = 2: height 1 + 2 * (3 + 1), width 1 + 3 * (4 + 1).
  assert grid.shape == (9, 16, 3) and grid.dtype == np.uint8
  expected = to_uint8(images)
  for k in range(5):
    top, left = 1 + (k // 3) * 4, 1 + (k % 3) * 5
    np.testing.assert_array_equal(grid[top:top + 3, left:left + 4], expected[k])
  assert (grid[0] == 255).all() and (grid[4] == 255).all() and (grid[:, 5] == 255).all()
  assert (grid[5:8, 11:15] == 255).all()  # the unused sixth cell


def test_grid_shape_choices():
  images = np.zeros((10, 2, 2, 3), np.float32)
  assert image_grid(images, padding=0).shape == (3 * 2, 4 * 2, 3)  # 4 columns by default
  assert image_grid(images, rows=2, padding=0).shape == (2 * 2, 5 * 2, 3)
  with pytest.raises(ValueError, match="do not fit"):
    image_grid(images, rows=2, cols=4)
  with pytest.raises(ValueError, match="NHWC"):
    image_grid(np.zeros((10, 2, 2, 2)))


def test_grayscale_becomes_three_equal_channels():
  images = RNG.uniform(0, 1, size=(2, 3, 3, 1))
  grid = image_grid(images, value_range=(0, 1), padding=0)
  assert grid.shape == (3, 6, 3)
  np.testing.assert_array_equal(grid[:, :3], np.repeat(to_uint8(images[0], (0, 1)), 3, -1))
  assert (grid[..., 0] == grid[..., 2]).all()


def test_class_labels_go_beside_their_rows():
  images = RNG.uniform(-1, 1, size=(6, 12, 12, 3))
  plain = image_grid(images, rows=2, padding=2)
  labelled = image_grid(images, rows=2, padding=2, row_labels=["cat", "dog"],
                        col_labels=["a", "b", "c"])
  top = labelled.shape[0] - plain.shape[0]
  left = labelled.shape[1] - plain.shape[1]
  assert top > 0 and left > 0
  np.testing.assert_array_equal(labelled[top:, left:], plain)
  # Some dark text in each row's band of the label strip, and above each column.
  for r in range(2):
    band = labelled[top + 2 + r * 14: top + 2 + r * 14 + 12, :left]
    assert band.min() < 128
  for c in range(3):
    assert labelled[:top, left + 2 + c * 14: left + 2 + c * 14 + 12].min() < 128
  with pytest.raises(ValueError, match="3 labels for 2 rows"):
    image_grid(images, rows=2, row_labels=["a", "b", "c"])


def test_png_round_trip(tmp_path):
  image = RNG.integers(0, 256, size=(5, 7, 3), dtype=np.uint8)
  save_png(str(tmp_path / "grid.png"), image)
  np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "grid.png")), image)
  with pytest.raises(ValueError, match="uint8"):
    save_png(str(tmp_path / "bad.png"), image.astype(np.float32))


def test_gif_round_trip(tmp_path):
  # Few colours, so the GIF palette stores every frame exactly.
  colours = np.array([[0, 0, 0], [255, 0, 0], [0, 255, 0], [0, 0, 255]], np.uint8)
  frames = [colours[RNG.integers(0, 4, size=(10, 12))] for _ in range(3)]
  path = str(tmp_path / "walk.gif")
  save_gif(path, frames, duration_ms=150)
  with Image.open(path) as gif:
    assert gif.n_frames == 3 and gif.size == (12, 10) and gif.is_animated
    assert gif.info["duration"] == 150 and gif.info["loop"] == 0
    for k in range(3):
      gif.seek(k)
      np.testing.assert_array_equal(np.asarray(gif.convert("RGB")), frames[k])
  with pytest.raises(ValueError, match="differ in shape"):
    save_gif(path, [frames[0], frames[0][:5]])


def test_slerp_keeps_endpoints_and_unit_norm():
  start = RNG.normal(size=(3, 16))
  end = RNG.normal(size=(3, 16))
  start /= np.linalg.norm(start, axis=-1, keepdims=True)
  end /= np.linalg.norm(end, axis=-1, keepdims=True)
  path = np.asarray(interpolation_latents(start.astype(np.float32), end.astype(np.float32), 7))
  assert path.shape == (7, 3, 16)
  np.testing.assert_allclose(path[0], start, atol=1e-6)
  np.testing.assert_allclose(path[-1], end, atol=1e-6)
  np.testing.assert_allclose(np.linalg.norm(path, axis=-1), 1.0, atol=1e-5)


def test_slerp_of_orthogonal_vectors_and_its_straight_line_cases():
  x, y = np.eye(2, dtype=np.float32)
  midpoint = np.asarray(interpolation_latents(x, y, 3))[1]
  np.testing.assert_allclose(midpoint, [np.sqrt(0.5)] * 2, atol=1e-6)
  np.testing.assert_allclose(np.asarray(interpolation_latents(x, y, 3, spherical=False))[1],
                             [0.5, 0.5])
  # Parallel vectors and a zero latent have no great circle: the line is used.
  for start in (x, np.zeros(2, np.float32)):
    path = np.asarray(interpolation_latents(start, 3 * x, 4))
    np.testing.assert_allclose(path, np.linspace(start, 3 * x, 4), atol=1e-6)
