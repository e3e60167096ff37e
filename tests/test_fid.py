"""gan_jax.fid and gan_jax.evaluation.inception_metrics: inputs, statistics files, the
comparison, and user errors. The network runs with random weights here (the
real ones are tested in test_inception.py)."""

import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from gan_jax import fid
from gan_jax.evaluation import feature_metrics, inception, inception_metrics
from tests.test_inception import random_archive_tensors


def random_features(seed, count=40):
  rng = np.random.default_rng(seed)
  return rng.normal(size=(count, inception.FEATURE_DIM)) * rng.uniform(0.5, 2, inception.FEATURE_DIM)


def test_value_range_detection():
  assert fid.detect_value_range(np.zeros((1, 2, 2), np.uint8)) == (0.0, 255.0)
  assert fid.detect_value_range(np.array([-0.5, 0.9])) == (-1.0, 1.0)
  assert fid.detect_value_range(np.array([0.0, 1.0])) == (0.0, 1.0)
  assert fid.detect_value_range(np.array([0.0, 200.0])) == (0.0, 255.0)
  assert fid.parse_value_range("-1,1") == (-1.0, 1.0)
  for bad in ("1", "1,0", "a,b"):
    with pytest.raises(fid.UserError):
      fid.parse_value_range(bad)


def test_stats_file_round_trip_and_comparison(tmp_path):
  a = inception_metrics.FeatureSet.from_features(random_features(0), "sha")
  b = inception_metrics.FeatureSet.from_features(random_features(1) + 0.3, "sha")
  path = str(tmp_path / "a.npz")
  inception_metrics.save_stats(path, a, source={"test": 1})
  assert inception_metrics.is_stats_file(path)
  loaded = inception_metrics.load_stats(path)
  results = inception_metrics.compare(loaded, b)
  assert results["num_real"] == 40 and results["weights_sha256"] == "sha"
  assert results["fid"] == pytest.approx(
      feature_metrics.frechet_distance(a.features, b.features), rel=1e-6)
  kid, _ = feature_metrics.kernel_distance(a.features, b.features, subset_size=40)
  assert results["kid"] == pytest.approx(kid, rel=1e-6)
  assert {"precision", "recall", "kid_se"} <= set(results)
  # pytorch-fid's files hold the moments only: FID alone.
  np.savez(tmp_path / "moments.npz", mu=a.mu, sigma=a.sigma)
  moments_only = inception_metrics.compare(inception_metrics.load_stats(
      str(tmp_path / "moments.npz")), b)
  assert moments_only["fid"] == pytest.approx(results["fid"]) and "kid" not in moments_only
  other = inception_metrics.FeatureSet.from_features(random_features(2), "other")
  with pytest.raises(ValueError, match="different weights"):
    inception_metrics.compare(a, other)


def test_split_stats_cache_key_changes_with_what_changes_features(tmp_path):
  base = dict(data_dir=str(tmp_path), dataset="mnist", split="test", count=100,
              weights_sha256="a")
  path = inception_metrics.split_stats_path(**base)
  for change in (dict(split="train"), dict(count=99), dict(weights_sha256="b")):
    assert inception_metrics.split_stats_path(**{**base, **change}) != path


@pytest.mark.slow
def test_folder_array_and_stats_inputs_agree(tmp_path, monkeypatch):
  extractor = inception.InceptionExtractor(
      inception.convert_params(random_archive_tensors(seed=3)), {"sha256": "random"})
  monkeypatch.setattr(inception, "load_extractor", lambda *args: extractor)
  images = np.random.default_rng(0).integers(0, 256, (6, 16, 16, 3), np.uint8)
  folder = tmp_path / "pngs"
  folder.mkdir()
  for i, image in enumerate(images):
    Image.fromarray(image).save(folder / f"{i:02d}.png")
  np.save(tmp_path / "images.npy", images)
  stats = str(tmp_path / "stats.npz")
  saved = fid.run(str(tmp_path / "images.npy"), stats, data_dir=str(tmp_path), save_stats=True)
  assert saved["count"] == 6
  results = fid.run(str(folder), stats, data_dir=str(tmp_path))
  assert abs(results["fid"]) < 1e-2  # the same images read two ways
  assert results["precision"] == 1.0 and results["recall"] == 1.0
  assert results["resize"] == inception.RESIZE and results["num_fake"] == 6


def test_user_errors(tmp_path):
  with pytest.raises(fid.UserError, match="No such file"):
    fid.run(str(tmp_path / "missing.npy"), "b", data_dir=str(tmp_path))
  np.save(tmp_path / "bad.npy", np.zeros((2, 3, 3, 2)))
  with pytest.raises(fid.UserError, match="images must be"):
    fid.run(str(tmp_path / "bad.npy"), "b", data_dir=str(tmp_path))
  with pytest.raises(fid.UserError, match="nosuch"):
    fid.run("nosuch:test", "b", data_dir=str(tmp_path))


def test_command_line_error_is_one_line_with_status_2(tmp_path):
  result = subprocess.run(
      [sys.executable, "-m", "gan_jax.fid", str(tmp_path / "missing.npy"), "x.npy"],
      capture_output=True, text=True, env={**os.environ, "JAX_PLATFORMS": "cpu"})
  assert result.returncode == 2
  assert result.stderr.strip().count("\n") == 0 and "No such file" in result.stderr


def test_evaluation_without_weights_notes_how_to_prepare(tmp_path):
  results = inception_metrics.evaluation_metrics("blobs", np.zeros((4, 28, 28, 1)), (-1, 1),
                                                 str(tmp_path))
  assert list(results) == ["inception_note"]
  assert "python -m gan_jax.prepare --weights=inception" in results["inception_note"]


@pytest.mark.slow
def test_evaluation_reports_inception_metrics_with_floor_and_caches_splits(
    data_dir, monkeypatch):
  from gan_jax.data import DATASETS
  from gan_jax.data import pipeline as pipeline_lib

  spec = DATASETS.get("blobs")
  if not pipeline_lib.is_prepared(spec, data_dir):
    pipeline_lib.prepare(spec, data_dir)
  extractor = inception.InceptionExtractor(
      inception.convert_params(random_archive_tensors(seed=4)), {"sha256": "random"})
  monkeypatch.setattr(inception, "load_extractor", lambda *args: extractor)
  computed = []
  original = inception_metrics.image_features
  monkeypatch.setattr(inception_metrics, "image_features",
                      lambda *args: computed.append(1) or original(*args))
  samples = np.random.default_rng(0).uniform(-1, 1, (8, 28, 28, 1))
  kwargs = dict(data_dir=data_dir, weights_path="random")
  first = inception_metrics.evaluation_metrics("blobs", samples, (-1, 1), **kwargs)
  assert {"inception_fid", "inception_kid", "inception_kid_se", "inception_precision",
          "floor/inception_fid", "floor/inception_kid"} <= set(first)
  assert first["inception_weights_sha256"] == "random" and len(computed) == 3
  again = inception_metrics.evaluation_metrics("blobs", samples, (-1, 1), **kwargs)
  assert len(computed) == 4  # the samples only: both real splits came from the cache
  assert again["inception_fid"] == first["inception_fid"]
  assert again["floor/inception_fid"] == first["floor/inception_fid"]
  # Fewer samples: both real splits are prefixes of the cached ones.
  fewer = inception_metrics.evaluation_metrics("blobs", samples[:6], (-1, 1), **kwargs)
  assert len(computed) == 5
  test_images = pipeline_lib.load_split(spec, "test", data_dir)["image"][:6]
  fresh = inception_metrics.compare(original(extractor, test_images, (0.0, 255.0)),
                                    original(extractor, samples[:6], (-1, 1)))
  assert fewer["inception_fid"] == fresh["fid"]
