"""Sample-quality metrics for synthetic mixtures (the VEEGAN/PacGAN protocol).

A generated point is high quality when it lies within 3 standard deviations
of its nearest mode. A mode is captured when at least one high-quality point
is assigned to it (Srivastava et al. 2017, section 5.1). The reverse KL is
KL(p_gen || uniform) over the histogram of high-quality points per mode
(Lin et al. 2018, Table 1).
"""

from __future__ import annotations

import numpy as np


def mode_coverage(samples: np.ndarray, means: np.ndarray, std: float) -> dict:
  samples = np.asarray(samples, np.float64)
  dists = np.linalg.norm(samples[:, None, :] - means[None, :, :], axis=-1)
  nearest = np.argmin(dists, axis=1)
  high_quality = dists[np.arange(len(samples)), nearest] <= 3.0 * std
  counts = np.bincount(nearest[high_quality], minlength=len(means))
  return {
      "modes": int(np.sum(counts > 0)),
      "high_quality_fraction": float(np.mean(high_quality)),
      "reverse_kl": reverse_kl_to_uniform(counts),
  }


def reverse_kl_to_uniform(counts: np.ndarray) -> float:
  """KL(p || U) for the histogram `counts`; inf when no point landed anywhere."""
  total = counts.sum()
  if total == 0:
    return float("inf")
  p = counts[counts > 0] / total
  return float(np.sum(p * np.log(p * len(counts))))


def moments(samples: np.ndarray) -> dict:
  """Mean and standard deviation of 1-D samples (the toy example's check)."""
  samples = np.asarray(samples, np.float64).reshape(-1)
  return {"mean": float(samples.mean()), "std": float(samples.std())}
