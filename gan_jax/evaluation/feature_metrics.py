"""Sample-quality metrics on feature vectors, one row per example.

The features are usually a pretrained classifier's penultimate activations for
real and for generated images. Everything runs on the host in float64 numpy:
these are evaluation-time numbers, and the matrix square root and the
unbiased MMD lose too much in float32.

- Frechet distance between fitted Gaussians (FID; Heusel et al. 2017).
- Kernel distance: unbiased MMD^2 with a cubic polynomial kernel, averaged
  over subsets (KID; Binkowski et al. 2018).
- Improved precision and recall from k-nearest-neighbour balls
  (Kynkaanniemi et al. 2019).
- Density and coverage, the same balls counted differently (Naeem et al. 2020).
- Classifier score, the Inception-score formula (Salimans et al. 2016).
"""

from __future__ import annotations

from typing import Iterator, Optional

import numpy as np

from gan_jax.evaluation.mixture_metrics import reverse_kl_to_uniform


def _as_features(x: np.ndarray, name: str) -> np.ndarray:
  x = np.asarray(x, np.float64)
  if x.ndim != 2:
    raise ValueError(f"{name} must be (examples, features), got shape {x.shape}")
  return x


def _as_feature_pair(real: np.ndarray, fake: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  real = _as_features(real, "real_features")
  fake = _as_features(fake, "fake_features")
  if real.shape[1] != fake.shape[1]:
    raise ValueError(f"feature sizes differ: {real.shape[1]} vs {fake.shape[1]}")
  return real, fake


# --- Frechet distance -------------------------------------------------------


def gaussian_frechet_distance(mean1: np.ndarray, cov1: np.ndarray,
                              mean2: np.ndarray, cov2: np.ndarray, *,
                              examples1: Optional[np.ndarray] = None) -> float:
  """||m1 - m2||^2 + Tr(C1 + C2 - 2 (C1 C2)^(1/2)) (Heusel et al. 2017).

  `examples1`, the rows C1 was computed from, make it much faster when they
  are fewer than the features."""
  mean1, mean2 = np.asarray(mean1, np.float64), np.asarray(mean2, np.float64)
  cov1, cov2 = np.asarray(cov1, np.float64), np.asarray(cov2, np.float64)
  if examples1 is not None and len(examples1) <= cov1.shape[0]:
    factor = _examples_factor(np.asarray(examples1, np.float64))
  else:
    factor = _covariance_factor(cov1)
  return _frechet(mean1, cov1, mean2, cov2, factor)


def frechet_distance(real_features: np.ndarray, fake_features: np.ndarray) -> float:
  """FID formula between Gaussians fitted to two feature sets (unbiased covariances)."""
  real, fake = _as_feature_pair(real_features, fake_features)
  if min(len(real), len(fake)) < 2:
    raise ValueError("a covariance needs at least 2 examples per set")
  if len(fake) < len(real):  # the trace term is symmetric: factor the smaller set
    real, fake = fake, real
  return gaussian_frechet_distance(real.mean(0), np.cov(real, rowvar=False), fake.mean(0),
                                   np.cov(fake, rowvar=False), examples1=real)


def _examples_factor(examples: np.ndarray) -> np.ndarray:
  """The centred examples, scaled: an exact factor of their unbiased
  covariance, and a thin one when there are fewer examples than features."""
  return (examples - examples.mean(0)).T / np.sqrt(len(examples) - 1)


def _covariance_factor(cov: np.ndarray) -> np.ndarray:
  """F with F F^T = C: Cholesky where C is positive definite (about a tenth
  of an eigendecomposition's time at 2048-d), else the eigenvectors scaled by
  the square roots of the positive eigenvalues (a rank-deficient C)."""
  try:
    return np.linalg.cholesky(cov)
  except np.linalg.LinAlgError:
    eigvals, eigvecs = np.linalg.eigh(cov)
    positive = eigvals > 0
    return eigvecs[:, positive] * np.sqrt(eigvals[positive])


def _frechet(mean1, cov1, mean2, cov2, factor1) -> float:
  """The distance, with Tr((C1 C2)^(1/2)) taken through C1 = F F^T: C1 C2 has
  the nonzero eigenvalues of the symmetric PSD F^T C2 F, where eigvalsh is
  stable, so the trace is the sum of their square roots."""
  similar = factor1.T @ cov2 @ factor1
  similar = 0.5 * (similar + similar.T)
  # Rounding leaves tiny negative eigenvalues where the product is singular; they are zero.
  trace_sqrt = np.sum(np.sqrt(np.clip(np.linalg.eigvalsh(similar), 0.0, None)))
  diff = mean1 - mean2
  return float(diff @ diff + np.trace(cov1) + np.trace(cov2) - 2.0 * trace_sqrt)


# --- Kernel distance --------------------------------------------------------


def polynomial_mmd2(x: np.ndarray, y: np.ndarray) -> float:
  """Unbiased MMD^2 with k(a, b) = (a.b / d + 1)^3 (Binkowski et al. 2018).

  The unbiased estimator drops the i == j terms from the within-set sums, so
  it averages to exactly zero when x and y come from one distribution.
  """
  x, y = _as_feature_pair(x, y)
  m, n, dim = len(x), len(y), x.shape[1]
  if min(m, n) < 2:
    raise ValueError("the unbiased MMD needs at least 2 examples per set")
  kernel = lambda a, b: (a @ b.T / dim + 1.0) ** 3
  k_xx, k_yy = kernel(x, x), kernel(y, y)
  within_x = (k_xx.sum() - np.trace(k_xx)) / (m * (m - 1))
  within_y = (k_yy.sum() - np.trace(k_yy)) / (n * (n - 1))
  return float(within_x + within_y - 2.0 * kernel(x, y).mean())


def kernel_distance(real_features: np.ndarray, fake_features: np.ndarray, *,
                    num_subsets: int = 100, subset_size: int = 1000,
                    seed: int = 0) -> tuple[float, float]:
  """KID: mean of `polynomial_mmd2` over random subsets, and its standard error.

  Each subset draws `subset_size` real and `subset_size` fake rows without
  replacement (capped at the smaller set, which keeps the estimate unbiased).
  The standard error is std(ddof=1) / sqrt(num_subsets); subsets share rows,
  so it measures the subsampling noise, not the spread over fresh samples.
  It is nan for a single subset.
  """
  real, fake = _as_feature_pair(real_features, fake_features)
  size = min(subset_size, len(real), len(fake))
  rng = np.random.default_rng(seed)
  estimates = np.array([
      polynomial_mmd2(real[rng.choice(len(real), size, replace=False)],
                      fake[rng.choice(len(fake), size, replace=False)])
      for _ in range(num_subsets)])
  if num_subsets < 2:
    return float(estimates.mean()), float("nan")
  return float(estimates.mean()), float(estimates.std(ddof=1) / np.sqrt(num_subsets))


# --- Nearest-neighbour balls ------------------------------------------------


def _squared_distance_blocks(rows: np.ndarray, cols: np.ndarray,
                             chunk_size: int) -> Iterator[tuple[int, np.ndarray]]:
  """(start, squared distances of rows[start:start+chunk] to every col).

  Only a chunk x len(cols) block is ever alive, so 10k x 10k sets stay at
  chunk * 10k * 8 bytes instead of 800 MB.
  """
  col_norms = np.einsum("ij,ij->i", cols, cols)
  for start in range(0, len(rows), chunk_size):
    block = rows[start:start + chunk_size]
    block_norms = np.einsum("ij,ij->i", block, block)
    squared = block_norms[:, None] + col_norms[None, :] - 2.0 * block @ cols.T
    yield start, np.maximum(squared, 0.0)


def _kth_neighbour_squared_radii(x: np.ndarray, k: int, chunk_size: int) -> np.ndarray:
  """Squared distance from each row to its k-th nearest other row."""
  if not 1 <= k < len(x):
    raise ValueError(f"k={k} needs at least k + 1 examples, got {len(x)}")
  radii = np.empty(len(x))
  for start, squared in _squared_distance_blocks(x, x, chunk_size):
    rows = np.arange(len(squared))
    # Masking self by index rather than dropping the smallest distance stays
    # right when rounding puts a near-duplicate below the self distance.
    squared[rows, start + rows] = np.inf
    radii[start:start + len(squared)] = np.partition(squared, k - 1, axis=1)[:, k - 1]
  return radii


def _centred(real: np.ndarray, fake: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  # Distances ignore a shared shift; removing a large common offset keeps the
  # |a|^2 + |b|^2 - 2 a.b expansion from cancelling away its precision.
  centre = real.mean(0)
  return real - centre, fake - centre


def _fraction_inside(queries: np.ndarray, support: np.ndarray, k: int,
                     chunk_size: int) -> float:
  radii = _kth_neighbour_squared_radii(support, k, chunk_size)
  inside = np.zeros(len(queries), bool)
  for start, squared in _squared_distance_blocks(queries, support, chunk_size):
    inside[start:start + len(squared)] = np.any(squared <= radii[None, :], axis=1)
  return float(inside.mean())


def precision_recall(real_features: np.ndarray, fake_features: np.ndarray, *,
                     k: int = 3, chunk_size: int = 1024) -> dict:
  """Improved precision and recall (Kynkaanniemi et al. 2019).

  Each set's manifold is the union of closed balls around its rows, the radius
  being the distance to the k-th nearest neighbour in the same set. Precision
  is the fraction of fake rows inside the real manifold; recall the fraction
  of real rows inside the fake manifold.
  """
  real, fake = _centred(*_as_feature_pair(real_features, fake_features))
  return {
      "precision": _fraction_inside(fake, real, k, chunk_size),
      "recall": _fraction_inside(real, fake, k, chunk_size),
  }


def density_coverage(real_features: np.ndarray, fake_features: np.ndarray, *,
                     k: int = 5, chunk_size: int = 1024) -> dict:
  """Density and coverage (Naeem et al. 2020).

  Both use only the real balls (radius: distance to the k-th real neighbour).
  Density counts, per fake row, how many real balls contain it, divided by
  k * num_fake; it is about 1 when the sets share a distribution and can
  exceed 1. Coverage is the fraction of real balls that hold a fake row.
  """
  real, fake = _centred(*_as_feature_pair(real_features, fake_features))
  radii = _kth_neighbour_squared_radii(real, k, chunk_size)
  balls_per_fake = np.zeros(len(fake))
  for start, squared in _squared_distance_blocks(fake, real, chunk_size):
    balls_per_fake[start:start + len(squared)] = np.sum(squared <= radii[None, :], axis=1)
  covered = np.zeros(len(real), bool)
  for start, squared in _squared_distance_blocks(real, fake, chunk_size):
    rows = slice(start, start + len(squared))
    covered[rows] = squared.min(axis=1) <= radii[rows]
  return {
      "density": float(balls_per_fake.sum() / (k * len(fake))),
      "coverage": float(covered.mean()),
  }


# --- Class-probability metrics ----------------------------------------------


def _log_or_zero(p: np.ndarray) -> np.ndarray:
  # Where p is 0 it multiplies the log, so 0 log 0 = 0 without a nan.
  return np.log(np.where(p > 0, p, 1.0))


def classifier_score(probs: np.ndarray, *, splits: int = 10) -> tuple[float, float]:
  """exp(E_x KL(p(y|x) || p(y))) per split, then mean and std over splits.

  The Inception-score formula (Salimans et al. 2016) with any
  classifier's probabilities. p(y) is the split's mean prediction, as in the
  reference implementation; 0 log 0 counts as 0. It ranges from 1 (every
  example gets the same prediction) to the number of classes (confident and
  balanced).
  """
  probs = np.asarray(probs, np.float64)
  if probs.ndim != 2:
    raise ValueError(f"probs must be (examples, classes), got shape {probs.shape}")
  if not 1 <= splits <= len(probs):
    raise ValueError(f"splits={splits} must lie in [1, {len(probs)}]")
  scores = []
  for part in np.array_split(probs, splits):
    kl = np.sum(part * (_log_or_zero(part) - _log_or_zero(part.mean(0))), axis=1)
    scores.append(np.exp(kl.mean()))
  return float(np.mean(scores)), float(np.std(scores))


def class_balance(probs: np.ndarray) -> dict:
  """How evenly samples spread over the classifier's classes: the share of
  samples predicted as each class (`class_share/k`) and the KL divergence of
  those shares from uniform (`class_kl`; 0 when perfectly even, log K when
  every sample is one class)."""
  probs = np.asarray(probs)
  if probs.ndim != 2:
    raise ValueError(f"probs must be (examples, classes), got shape {probs.shape}")
  counts = np.bincount(probs.argmax(-1), minlength=probs.shape[1])
  shares = counts / max(counts.sum(), 1)
  return {"class_kl": reverse_kl_to_uniform(counts),
          **{f"class_share/{k}": float(share) for k, share in enumerate(shares)}}


# --- Everything at once -----------------------------------------------------


def all_feature_metrics(real_features: np.ndarray, fake_features: np.ndarray,
                        fake_probs: np.ndarray | None = None, *, seed: int = 0,
                        kid_subsets: int = 100, kid_subset_size: int = 1000,
                        precision_recall_k: int = 3, density_coverage_k: int = 5,
                        classifier_splits: int = 10, chunk_size: int = 1024) -> dict:
  """Every feature metric as a plain float.

  Keys: fid, kid, kid_se, precision, recall, density, coverage, and with
  `fake_probs` also classifier_score, classifier_score_std, class_kl and
  class_share/k (see `class_balance`).
  """
  kid, kid_se = kernel_distance(real_features, fake_features, num_subsets=kid_subsets,
                                subset_size=kid_subset_size, seed=seed)
  out = {"fid": frechet_distance(real_features, fake_features), "kid": kid, "kid_se": kid_se}
  out.update(precision_recall(real_features, fake_features, k=precision_recall_k,
                              chunk_size=chunk_size))
  out.update(density_coverage(real_features, fake_features, k=density_coverage_k,
                              chunk_size=chunk_size))
  if fake_probs is not None:
    score, score_std = classifier_score(fake_probs, splits=classifier_splits)
    out["classifier_score"], out["classifier_score_std"] = score, score_std
    out.update(class_balance(fake_probs))
  return out
