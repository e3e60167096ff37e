"""Sample-quality metrics on hand-built samples."""

import math

import numpy as np
import pytest

from gan_jax.evaluation.mixture_metrics import mode_coverage, moments, reverse_kl_to_uniform

STD = 0.01
# The ring8 layout: means (cos 2 pi i / 8, sin 2 pi i / 8).
ANGLES = 2 * np.pi * np.arange(8) / 8
RING = np.stack([np.cos(ANGLES), np.sin(ANGLES)], axis=1)


def radial(mode, distance):
  """A point `distance` from ring mode `mode`, moving outwards."""
  return RING[mode] * (1.0 + distance)


def test_points_on_three_of_eight_modes():
  samples = np.concatenate([np.repeat(RING[[0]], 2, 0), RING[[3]], np.repeat(RING[[5]], 3, 0)])
  out = mode_coverage(samples, RING, STD)
  assert out["modes"] == 3
  assert out["high_quality_fraction"] == 1.0
  # Histogram [2, 0, 0, 1, 0, 3, 0, 0] / 6 against uniform over 8:
  p = np.array([2, 1, 3]) / 6
  expected = (1 / 3) * math.log(8 / 3) + (1 / 6) * math.log(8 / 6) + (1 / 2) * math.log(8 / 2)
  assert out["reverse_kl"] == pytest.approx(expected, rel=1e-12)
  assert out["reverse_kl"] == pytest.approx(float(np.sum(p * np.log(p * 8))), rel=1e-12)


def test_all_eight_modes_equally_gives_zero_kl():
  samples = np.repeat(RING, 4, axis=0) + 0.5 * STD
  out = mode_coverage(samples, RING, STD)
  assert out["modes"] == 8
  assert out["high_quality_fraction"] == 1.0
  assert out["reverse_kl"] == pytest.approx(0.0, abs=1e-12)


def test_three_sigma_threshold():
  inside = np.stack([radial(2, 2.9 * STD), radial(6, -2.9 * STD)])
  out = mode_coverage(inside, RING, STD)
  assert out["modes"] == 2
  assert out["high_quality_fraction"] == 1.0

  outside = np.stack([radial(2, 3.1 * STD), radial(6, -3.1 * STD)])
  out = mode_coverage(outside, RING, STD)
  assert out["modes"] == 0
  assert out["high_quality_fraction"] == 0.0
  assert out["reverse_kl"] == math.inf


def test_threshold_scales_with_std():
  # 0.05 from a mode: low quality at sigma 0.01, high quality at sigma 0.02.
  x = radial(1, 0.05)[None]
  assert mode_coverage(x, RING, 0.01)["modes"] == 0
  assert mode_coverage(x, RING, 0.02)["modes"] == 1


def test_mixed_quality_fraction_and_kl_use_only_high_quality_points():
  samples = np.stack([
      RING[0], RING[0], radial(0, 2.0 * STD),  # 3 good on mode 0
      RING[4],                                 # 1 good on mode 4
      np.array([0.0, 0.0]),                    # far from everything
      radial(4, 5.0 * STD),                    # nearest mode 4, but too far
  ])
  out = mode_coverage(samples, RING, STD)
  assert out["modes"] == 2
  assert out["high_quality_fraction"] == pytest.approx(4 / 6)
  # Histogram [3, 0, 0, 0, 1, 0, 0, 0] / 4.
  expected = 0.75 * math.log(0.75 * 8) + 0.25 * math.log(0.25 * 8)
  assert out["reverse_kl"] == pytest.approx(expected, rel=1e-12)


def test_points_assigned_to_nearest_mode():
  # Between modes 0 and 1 but much closer to 1: counts for mode 1 only.
  x = (0.01 * RING[0] + 0.99 * RING[1])[None]
  out = mode_coverage(x, RING, 0.01)  # distance 0.0077 < 0.03
  assert out["modes"] == 1
  assert out["reverse_kl"] == pytest.approx(math.log(8))


@pytest.mark.parametrize("k", [2, 5, 8, 25])
def test_reverse_kl_uniform_is_zero(k):
  assert reverse_kl_to_uniform(np.full(k, 7)) == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("k", [2, 5, 8, 25])
def test_reverse_kl_all_mass_in_one_mode_is_log_k(k):
  counts = np.zeros(k, int)
  counts[k // 2] = 13
  assert reverse_kl_to_uniform(counts) == pytest.approx(math.log(k), rel=1e-12)


def test_reverse_kl_two_modes_by_hand():
  # p = (0.75, 0.25), uniform q = (0.5, 0.5):
  # KL = 0.75 log(0.75 / 0.5) + 0.25 log(0.25 / 0.5) = 0.75 log 1.5 - 0.25 log 2.
  expected = 0.75 * math.log(1.5) - 0.25 * math.log(2.0)
  assert reverse_kl_to_uniform(np.array([3, 1])) == pytest.approx(expected, rel=1e-12)
  assert reverse_kl_to_uniform(np.array([1, 3])) == pytest.approx(expected, rel=1e-12)
  assert expected == pytest.approx(0.130812035, rel=1e-8)


def test_reverse_kl_empty_histogram_is_inf():
  assert reverse_kl_to_uniform(np.zeros(8, int)) == math.inf


def test_moments_known_array():
  out = moments(np.array([1.0, 2.0, 3.0, 4.0]))
  assert out["mean"] == pytest.approx(2.5)
  # Population std: sqrt(((1.5)^2 + (0.5)^2 + (0.5)^2 + (1.5)^2) / 4) = sqrt(1.25).
  assert out["std"] == pytest.approx(math.sqrt(1.25))


def test_moments_flattens_and_handles_constant():
  out = moments(np.array([[10.0], [14.0], [6.0], [10.0]], np.float32))
  assert out["mean"] == pytest.approx(10.0)
  assert out["std"] == pytest.approx(math.sqrt(8.0))  # (0 + 16 + 16 + 0) / 4
  const = moments(np.full((3, 2), -7.0))
  assert const == {"mean": -7.0, "std": 0.0}
