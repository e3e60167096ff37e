"""Paths through latent space, for interpolation pictures."""

from __future__ import annotations

import numpy as np

# Below this sin(angle), start and end are (anti)parallel and slerp's great
# circle is undefined or numerically unstable; the straight line is used.
_PARALLEL_SIN = 1e-6


def interpolation_latents(z_start, z_end, steps: int, spherical: bool = True) -> np.ndarray:
  """`steps` latents from z_start to z_end inclusive: shape (steps, *z_start.shape).

  The last axis is the latent; leading axes (e.g. one row per pair) are kept,
  as is the dtype. With `spherical`, uses slerp (Shoemake 1985): with angle w
  between the two,
    z(t) = sin((1 - t) w) / sin(w) z_start + sin(t w) / sin(w) z_end,
  which White (2016, "Sampling Generative Networks") recommends for Gaussian
  latents, whose samples lie near a sphere: a straight line cuts through
  its low-norm interior, which the generator rarely saw in training.
  """
  dtype = np.result_type(z_start, z_end)
  z_start = np.asarray(z_start, np.float64)
  z_end = np.asarray(z_end, np.float64)
  if z_start.shape != z_end.shape:
    raise ValueError(f"Latent shapes differ: {z_start.shape} vs {z_end.shape}.")
  t = np.linspace(0.0, 1.0, steps).reshape((steps,) + (1,) * z_start.ndim)
  linear = (1 - t) * z_start + t * z_end
  if not spherical:
    return linear.astype(dtype)
  norms = np.linalg.norm(z_start, axis=-1, keepdims=True) * np.linalg.norm(
      z_end, axis=-1, keepdims=True)
  with np.errstate(invalid="ignore", divide="ignore"):
    cosine = np.sum(z_start * z_end, axis=-1, keepdims=True) / norms
  angle = np.arccos(np.clip(cosine, -1.0, 1.0))
  sine = np.sin(angle)
  # Written as "not >=" so a zero latent (NaN angle) also takes the line.
  parallel = ~(sine >= _PARALLEL_SIN)
  safe_sine = np.where(parallel, 1.0, sine)
  on_circle = (np.sin((1 - t) * angle) * z_start + np.sin(t * angle) * z_end) / safe_sine
  return np.where(parallel, linear, on_circle).astype(dtype)
