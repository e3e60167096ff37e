"""Pictures of generated samples, written as PNG files."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def scatter_png(path: str, samples: np.ndarray, means: np.ndarray | None,
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
  with open(path, "wb") as f:
    f.write(buffer.getvalue())
  buffer.seek(0)
  return plt.imread(buffer, format="png")[..., :3].__mul__(255).astype(np.uint8)
