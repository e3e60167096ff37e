"""Feature-set metrics against a second computation: scipy, closed forms, loops."""

import math

import numpy as np
import pytest
import scipy.linalg
import scipy.stats

from gan_jax.evaluation.feature_metrics import (
    all_feature_metrics, class_balance, classifier_score, density_coverage, frechet_distance,
    gaussian_frechet_distance, kernel_distance, polynomial_mmd2, precision_recall)


def random_cov(rng, dim):
  a = rng.normal(size=(dim, dim))
  return a @ a.T / dim + 0.1 * np.eye(dim)


# --- Frechet distance -------------------------------------------------------


def scipy_frechet(x, y):
  mu1, mu2 = x.mean(0), y.mean(0)
  s1, s2 = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
  covmean = scipy.linalg.sqrtm(s1 @ s2).real
  return float(np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2 - 2.0 * covmean))


@pytest.mark.parametrize("num, dim", [(50, 4), (200, 16), (30, 40)])
def test_frechet_matches_scipy_sqrtm(num, dim):
  rng = np.random.default_rng(dim)
  x = rng.normal(size=(num, dim)) @ rng.normal(size=(dim, dim))
  y = rng.normal(size=(num + 7, dim)) * 2.0 + 0.5
  # (30, 40) has rank-deficient covariances, where the eigenvalue clipping matters.
  assert frechet_distance(x, y) == pytest.approx(scipy_frechet(x, y), rel=1e-6, abs=1e-8)


def test_frechet_routes_agree_on_a_rank_deficient_covariance():
  """Fewer examples than features: the examples' factor (from features), the
  eigendecomposition fallback (moments only; Cholesky refuses the singular
  covariance) and scipy's sqrtm give one value."""
  rng = np.random.default_rng(5)
  x, y = rng.normal(size=(20, 30)), rng.normal(size=(60, 30)) + 0.2
  moments = (x.mean(0), np.cov(x, rowvar=False), y.mean(0), np.cov(y, rowvar=False))
  with pytest.raises(np.linalg.LinAlgError):
    np.linalg.cholesky(moments[1])
  expected = scipy_frechet(x, y)
  assert gaussian_frechet_distance(*moments) == pytest.approx(expected, rel=1e-6)
  assert gaussian_frechet_distance(*moments, examples1=x) == pytest.approx(expected, rel=1e-6)
  assert frechet_distance(y, x) == pytest.approx(expected, rel=1e-6)


def test_frechet_identical_sets_is_zero():
  x = np.random.default_rng(0).normal(size=(300, 32)) + 100.0
  assert frechet_distance(x, x) == pytest.approx(0.0, abs=1e-8)


def test_gaussian_frechet_closed_form_for_diagonal_covariances():
  # Commuting covariances: Tr(C1 + C2 - 2 (C1 C2)^(1/2)) = sum (s1 - s2)^2.
  mean1, mean2 = np.array([0.0, 1.0, -2.0]), np.array([1.0, 1.0, 0.0])
  std1, std2 = np.array([1.0, 2.0, 0.5]), np.array([3.0, 2.0, 1.5])
  expected = 1.0 + 4.0 + (4.0 + 0.0 + 1.0)
  got = gaussian_frechet_distance(mean1, np.diag(std1 ** 2), mean2, np.diag(std2 ** 2))
  assert got == pytest.approx(expected, rel=1e-12)


def test_gaussian_frechet_general_covariances_match_sqrtm_and_are_symmetric():
  rng = np.random.default_rng(1)
  c1, c2 = random_cov(rng, 6), random_cov(rng, 6)
  m1, m2 = rng.normal(size=6), rng.normal(size=6)
  expected = (np.sum((m1 - m2) ** 2)
              + np.trace(c1 + c2 - 2.0 * scipy.linalg.sqrtm(c1 @ c2).real))
  assert gaussian_frechet_distance(m1, c1, m2, c2) == pytest.approx(expected, rel=1e-9)
  assert gaussian_frechet_distance(m2, c2, m1, c1) == pytest.approx(expected, rel=1e-9)


def test_frechet_of_samples_approaches_the_gaussian_closed_form():
  rng = np.random.default_rng(2)
  x = rng.normal(size=(20000, 2)) * [1.0, 2.0]
  y = rng.normal(size=(20000, 2)) * [2.0, 2.0] + [3.0, 0.0]
  # |mu diff|^2 = 9, plus (1 - 2)^2 + (2 - 2)^2 = 1.
  assert frechet_distance(x, y) == pytest.approx(10.0, rel=0.02)


# --- Kernel distance --------------------------------------------------------


def loop_mmd2(x, y):
  dim = x.shape[1]
  k = lambda a, b: (float(np.dot(a, b)) / dim + 1.0) ** 3
  m, n = len(x), len(y)
  xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
  yy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
  xy = sum(k(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n)
  return xx + yy - 2.0 * xy


def test_polynomial_mmd2_matches_double_loop():
  rng = np.random.default_rng(3)
  x, y = rng.normal(size=(9, 5)), rng.normal(size=(12, 5)) + 0.3
  assert polynomial_mmd2(x, y) == pytest.approx(loop_mmd2(x, y), rel=1e-10)


def test_kid_with_whole_set_subsets_is_the_full_mmd():
  # A subset of every row is a permutation, which the estimator ignores, so
  # all subsets agree and the standard error is zero.
  rng = np.random.default_rng(4)
  x, y = rng.normal(size=(10, 3)), rng.normal(size=(10, 3)) * 1.5
  kid, se = kernel_distance(x, y, num_subsets=5, subset_size=100)
  assert kid == pytest.approx(loop_mmd2(x, y), rel=1e-10)
  assert se == pytest.approx(0.0, abs=1e-10)


def test_kid_subsets_are_seeded():
  rng = np.random.default_rng(5)
  x, y = rng.normal(size=(60, 4)), rng.normal(size=(60, 4)) + 0.5
  first = kernel_distance(x, y, num_subsets=8, subset_size=20, seed=1)
  assert kernel_distance(x, y, num_subsets=8, subset_size=20, seed=1) == first
  assert kernel_distance(x, y, num_subsets=8, subset_size=20, seed=2) != first
  assert math.isnan(kernel_distance(x, y, num_subsets=1, subset_size=20)[1])


def test_kid_near_zero_for_one_distribution_and_positive_for_a_shift():
  # Subsets of 100 out of 2000 rarely share rows, so the standard error is
  # close to honest here (about 1% of seeds land outside 3 se).
  rng = np.random.default_rng(6)
  x, y = rng.normal(size=(2000, 16)), rng.normal(size=(2000, 16))
  kid, se = kernel_distance(x, y, num_subsets=50, subset_size=100)
  assert abs(kid) < 3.0 * se
  shifted, shifted_se = kernel_distance(x, y + 0.3, num_subsets=50, subset_size=100)
  assert shifted > 10.0 * shifted_se


# --- Precision, recall, density, coverage -----------------------------------


def loop_kth_radius(x, k):
  radii = []
  for i in range(len(x)):
    dists = sorted(np.linalg.norm(x[i] - x[j]) for j in range(len(x)) if j != i)
    radii.append(dists[k - 1])
  return np.array(radii)


def loop_prdc(real, fake, pr_k, dc_k):
  real_r, fake_r = loop_kth_radius(real, pr_k), loop_kth_radius(fake, pr_k)
  dist = lambda a, b: np.linalg.norm(a - b)
  precision = np.mean([any(dist(f, r) <= rr for r, rr in zip(real, real_r)) for f in fake])
  recall = np.mean([any(dist(r, f) <= fr for f, fr in zip(fake, fake_r)) for r in real])
  real_dc = loop_kth_radius(real, dc_k)
  density = sum(dist(f, r) <= rr for f in fake for r, rr in zip(real, real_dc))
  density /= dc_k * len(fake)
  coverage = np.mean([min(dist(r, f) for f in fake) <= rr for r, rr in zip(real, real_dc)])
  return {"precision": precision, "recall": recall, "density": density, "coverage": coverage}


@pytest.mark.parametrize("chunk_size", [7, 1024])
def test_prdc_match_brute_force_loops(chunk_size):
  rng = np.random.default_rng(7)
  real = rng.normal(size=(90, 3))
  fake = rng.normal(size=(70, 3)) * 1.3 + 0.4
  expected = loop_prdc(real, fake, pr_k=3, dc_k=5)
  got = precision_recall(real, fake, k=3, chunk_size=chunk_size)
  got.update(density_coverage(real, fake, k=5, chunk_size=chunk_size))
  assert got == pytest.approx(expected, abs=1e-12)
  # A non-trivial case: none of the four is saturated at 0 or 1.
  assert all(0.0 < v < 1.0 for k, v in got.items() if k != "density")


def test_prdc_identical_sets_are_full():
  x = np.random.default_rng(8).normal(size=(100, 8))
  got = precision_recall(x, x, chunk_size=16) | density_coverage(x, x, chunk_size=16)
  assert got["precision"] == got["recall"] == got["coverage"] == 1.0
  # Each closed ball holds its centre and its k nearest neighbours.
  assert got["density"] == pytest.approx(6 / 5)


def test_prdc_far_apart_sets_are_empty():
  rng = np.random.default_rng(9)
  real = rng.normal(size=(50, 4))
  fake = rng.normal(size=(50, 4)) + 1000.0
  got = precision_recall(real, fake) | density_coverage(real, fake)
  assert got == {"precision": 0.0, "recall": 0.0, "density": 0.0, "coverage": 0.0}


def test_precision_recall_separate_quality_from_diversity():
  # Fakes collapsed onto a small patch of the real cloud: all are realistic
  # (precision 1) but few real points are near a fake (recall well below 1).
  rng = np.random.default_rng(10)
  real = rng.normal(size=(400, 2))
  fake = 0.05 * rng.normal(size=(400, 2))
  got = precision_recall(real, fake) | density_coverage(real, fake)
  assert got["precision"] == 1.0
  assert got["recall"] < 0.1
  assert got["coverage"] < 0.2


def test_duplicate_real_rows_give_zero_radius_balls():
  # Four copies of one point: its 3rd neighbour is itself at distance 0, so
  # only an exact hit lands in those balls.
  real = np.array([[0.0, 0.0]] * 4 + [[10.0, 0.0], [20.0, 0.0], [30.0, 0.0], [40.0, 0.0]])
  assert precision_recall(real, np.array([[0.0, 0.0]] * 4))["precision"] == 1.0
  assert precision_recall(real, np.array([[0.0, 1e-3]] * 4))["precision"] == 0.0


# --- Classifier score -------------------------------------------------------


def test_classifier_score_is_class_count_for_confident_balanced_predictions():
  probs = np.eye(10)[np.tile(np.arange(10), 50)]
  score, std = classifier_score(probs, splits=10)
  assert score == pytest.approx(10.0, rel=1e-12)
  assert std == pytest.approx(0.0, abs=1e-12)


def test_classifier_score_is_one_for_constant_predictions():
  probs = np.tile(np.array([0.7, 0.2, 0.1, 0.0]), (100, 1))
  score, std = classifier_score(probs, splits=5)
  assert score == pytest.approx(1.0, abs=1e-12)
  assert std == pytest.approx(0.0, abs=1e-12)


def test_classifier_score_matches_scipy_entropy_per_split():
  rng = np.random.default_rng(11)
  probs = rng.dirichlet(0.3 * np.ones(6), size=103)
  expected = []
  for part in np.array_split(probs, 4):
    marginal = part.mean(0)
    expected.append(math.exp(np.mean([scipy.stats.entropy(p, marginal) for p in part])))
  score, std = classifier_score(probs, splits=4)
  assert score == pytest.approx(np.mean(expected), rel=1e-10)
  assert std == pytest.approx(np.std(expected), rel=1e-8)
  assert 1.0 < score < 6.0


# --- Everything at once -----------------------------------------------------


def test_all_feature_metrics_returns_plain_floats_matching_the_parts():
  rng = np.random.default_rng(12)
  real, fake = rng.normal(size=(120, 6)), rng.normal(size=(100, 6)) + 0.2
  probs = rng.dirichlet(np.ones(5), size=100)
  out = all_feature_metrics(real, fake, probs, seed=3, kid_subsets=10, kid_subset_size=50)
  assert set(out) == {"fid", "kid", "kid_se", "precision", "recall", "density", "coverage",
                      "classifier_score", "classifier_score_std", "class_kl",
                      *(f"class_share/{k}" for k in range(5))}
  assert all(type(v) is float for v in out.values())
  assert out["fid"] == frechet_distance(real, fake)
  assert (out["kid"], out["kid_se"]) == kernel_distance(
      real, fake, num_subsets=10, subset_size=50, seed=3)
  assert out["precision"] == precision_recall(real, fake)["precision"]
  assert out["coverage"] == density_coverage(real, fake)["coverage"]
  assert (out["classifier_score"], out["classifier_score_std"]) == classifier_score(probs)
  assert out["class_kl"] == class_balance(probs)["class_kl"]

  no_probs = all_feature_metrics(real, fake, seed=3, kid_subsets=10, kid_subset_size=50)
  assert "classifier_score" not in no_probs


def test_class_balance_against_hand_counts():
  # 6 samples: three of class 0, two of class 1, one of class 2; 4 classes.
  probs = np.eye(4)[[0, 0, 0, 1, 1, 2]] * 0.7 + 0.075
  balance = class_balance(probs)
  shares = np.array([3, 2, 1, 0]) / 6
  assert [balance[f"class_share/{k}"] for k in range(4)] == pytest.approx(shares)
  p = shares[shares > 0]
  assert balance["class_kl"] == pytest.approx(np.sum(p * np.log(p * 4)))
  even = class_balance(np.eye(4)[[0, 1, 2, 3]])
  assert even["class_kl"] == 0.0
  one_class = class_balance(np.eye(4)[[2, 2]])
  assert one_class["class_kl"] == pytest.approx(np.log(4))
