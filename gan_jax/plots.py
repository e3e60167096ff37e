"""Pictures of generated samples: scatter plots, image grids, PNG and GIF files
(written through etils.epath, so to local or remote paths)."""

from __future__ import annotations

import io
import math
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from etils import epath  # noqa: E402
from etils.epath import PathLike  # noqa: E402
from PIL import Image, ImageDraw, ImageFont  # noqa: E402

LABEL_MARGIN = 4  # pixels of white around label text


def scatter_png(path: PathLike, samples: np.ndarray, means: np.ndarray | None,
                title: str) -> np.ndarray:
  """Generated 2-D points over the real modes; returns the image as HWC uint8."""
  fig, ax = plt.subplots(figsize=(4, 4), dpi=100)
  ax.scatter(samples[:, 0], samples[:, 1], s=2, alpha=0.4, color="tab:blue",
             label="generated")
  if means is not None:
    ax.scatter(means[:, 0], means[:, 1], s=30, marker="x", color="tab:red", label="modes")
    span = np.abs(means).max() * 1.5
    ax.set_xlim(-span, span)
    ax.set_ylim(-span, span)
  ax.set_aspect("equal")
  ax.set_title(title)
  ax.legend(loc="upper right", fontsize=7)
  buffer = io.BytesIO()
  fig.savefig(buffer, format="png")
  plt.close(fig)
  epath.Path(path).write_bytes(buffer.getvalue())
  buffer.seek(0)
  return plt.imread(buffer, format="png")[..., :3].__mul__(255).astype(np.uint8)


def to_uint8(images, value_range: tuple[float, float] = (-1.0, 1.0)) -> np.ndarray:
  """Float images in `value_range` to uint8 [0, 255]; values outside are clipped."""
  low, high = value_range
  unit = (np.asarray(images, np.float32) - low) / (high - low)
  return np.round(np.clip(unit, 0.0, 1.0) * 255).astype(np.uint8)


def image_grid(images, rows: int | None = None, cols: int | None = None, *,
               padding: int = 2, value_range: tuple[float, float] = (-1.0, 1.0),
               background: int = 255, row_labels: Sequence[str] | None = None,
               col_labels: Sequence[str] | None = None) -> np.ndarray:
  """An NHWC float batch (C = 1 or 3) tiled row by row into one HW3 uint8 image.

  Image k sits in row k // cols, column k % cols; cells are separated (and
  framed) by `padding` pixels of `background`, as are unused cells. With one
  of rows/cols given the other is derived; with neither the grid is near square.
  For a class-conditional grid pass one row per class and `row_labels`; labels
  are drawn in PIL's default font on white strips left of the rows / above the
  columns.
  """
  images = np.asarray(images)
  if images.ndim != 4 or images.shape[-1] not in (1, 3):
    raise ValueError(f"Expected NHWC images with 1 or 3 channels, got {images.shape}.")
  count, height, width, _ = images.shape
  if rows is None and cols is None:
    cols = math.ceil(math.sqrt(count))
  if cols is None:
    cols = math.ceil(count / rows)
  if rows is None:
    rows = math.ceil(count / cols)
  if rows * cols < count:
    raise ValueError(f"{count} images do not fit a {rows} x {cols} grid.")
  pixels = np.broadcast_to(to_uint8(images, value_range), (count, height, width, 3))
  grid = np.full((padding + rows * (height + padding), padding + cols * (width + padding), 3),
                 background, np.uint8)
  for k in range(count):
    top = padding + (k // cols) * (height + padding)
    left = padding + (k % cols) * (width + padding)
    grid[top:top + height, left:left + width] = pixels[k]
  if row_labels is None and col_labels is None:
    return grid
  return _add_labels(grid, height, width, padding, rows, cols, row_labels, col_labels)


def _add_labels(grid, height, width, padding, rows, cols, row_labels, col_labels):
  for labels, n, axis in ((row_labels, rows, "rows"), (col_labels, cols, "columns")):
    if labels is not None and len(labels) != n:
      raise ValueError(f"{len(labels)} labels for {n} {axis}.")
  font = ImageFont.load_default()
  measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))

  def text_size(text):
    left, top, right, bottom = measure.textbbox((0, 0), text, font=font)
    return right - left, bottom - top

  left_margin = 0
  if row_labels is not None:
    left_margin = max(text_size(str(t))[0] for t in row_labels) + 2 * LABEL_MARGIN
  top_margin = 0
  if col_labels is not None:
    top_margin = max(text_size(str(t))[1] for t in col_labels) + 2 * LABEL_MARGIN
  canvas = Image.new("RGB", (left_margin + grid.shape[1], top_margin + grid.shape[0]),
                     (255, 255, 255))
  canvas.paste(Image.fromarray(grid), (left_margin, top_margin))
  draw = ImageDraw.Draw(canvas)
  for r, text in enumerate(() if row_labels is None else row_labels):
    centre = top_margin + padding + r * (height + padding) + height / 2
    draw.text((LABEL_MARGIN, centre), str(text), fill=(0, 0, 0), font=font, anchor="lm")
  for c, text in enumerate(() if col_labels is None else col_labels):
    centre = left_margin + padding + c * (width + padding) + width / 2
    draw.text((centre, top_margin / 2), str(text), fill=(0, 0, 0), font=font, anchor="mm")
  return np.asarray(canvas)


def save_png(path: PathLike, image: np.ndarray) -> None:
  """Writes an HW or HWC uint8 image."""
  _write(path, lambda f: Image.fromarray(_checked_uint8(image)).save(f, format="PNG"))


def save_gif(path: PathLike, frames: Sequence[np.ndarray], duration_ms: int = 200,
             loop: int = 0) -> None:
  """Writes uint8 frames of one shape as an animated GIF (loop=0: forever).

  GIF stores 256 colours per frame and times in 10 ms units, and Pillow merges
  consecutive identical frames into one longer frame.
  """
  if not frames:
    raise ValueError("A GIF needs at least one frame.")
  shapes = {np.shape(frame) for frame in frames}
  if len(shapes) != 1:
    raise ValueError(f"GIF frames differ in shape: {sorted(shapes)}.")
  images = [Image.fromarray(_checked_uint8(frame)) for frame in frames]
  _write(path, lambda f: images[0].save(f, format="GIF", save_all=True,
                                        append_images=images[1:], duration=duration_ms,
                                        loop=loop))


def _write(path: PathLike, encode) -> None:
  """Encodes into memory, then writes the bytes through epath (local or remote)."""
  buffer = io.BytesIO()
  encode(buffer)
  epath.Path(path).write_bytes(buffer.getvalue())


def _checked_uint8(image) -> np.ndarray:
  image = np.asarray(image)
  if image.dtype != np.uint8:
    raise ValueError(f"Expected a uint8 image, got {image.dtype}; see to_uint8.")
  return image
