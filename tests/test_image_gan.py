"""Image GANs through the shared step and loop: conditional DCGAN with
DiffAugment, R1 and generator EMA on 4 devices vs 1; EMA against its
recurrence; bitwise resume of image GAN and VAE runs; pictures and the
sample CLI's kinds."""

import os

import jax
import numpy as np
import PIL.Image
import pytest
from jax.sharding import NamedSharding

from configs import dcgan_mnist_classic, vae_mnist
from gan_jax import gan
from gan_jax.registry import ConfigError
from gan_jax.sample import write_samples
from gan_jax.sharding import BATCH_SPEC, make_mesh, replicated
from gan_jax.step import make_train_step
from gan_jax.run import resolved_dataset, restore_for_inference
from gan_jax.train import train_and_evaluate

BATCH = 16
IMAGE_SHAPE = (28, 28, 1)
NUM_CLASSES = 10


def _conditional_config():
  c = dcgan_mnist_classic.get_config("tiny")
  c.dataset.name = "blobs"
  c.num_classes = NUM_CLASSES
  c.generator.base_features = c.discriminator.base_features = 4
  c.augment.policy = "color,translation,cutout"
  c.regularizers.r1.weight = 1.0
  c.ema.decay = 0.9
  c.ema.start_step = 1
  c.batch_size = BATCH
  return c


def _run_steps(config, num_devices, num_steps=3):
  mesh = make_mesh(jax.devices()[:num_devices])
  family = gan.GANFamily.from_config(config, IMAGE_SHAPE)
  state = jax.jit(lambda: family.create_state(config), out_shardings=replicated(mesh))()
  initial = jax.device_get(state.players)
  # Donating, like the training loop: on 4 devices this is the program that
  # `conditional_workdir`'s training compiles, so the compilation cache
  # serves it once either has compiled it.
  step_fn = make_train_step(family, mesh)
  sharding = NamedSharding(mesh, BATCH_SPEC)
  generator_params, history = [], []
  for t in range(num_steps):
    rng = np.random.default_rng(t)
    batches = {"x": rng.uniform(-1, 1, (1, BATCH, *IMAGE_SHAPE)).astype(np.float32),
               "label": rng.integers(0, NUM_CLASSES, (1, BATCH)).astype(np.int32)}
    state, metrics = step_fn(state, jax.device_put(batches, sharding))
    generator_params.append(jax.device_get(state.players["generator"].params))
    history.append(jax.device_get(metrics))
  return state, history, generator_params, initial


@pytest.fixture(scope="module")
def conditional_runs():
  config = _conditional_config()
  return config, _run_steps(config, 4), _run_steps(config, 1)


@pytest.mark.slow
def test_conditional_augmented_step_four_devices_match_one(conditional_runs):
  _, (state4, metrics4, _, _), (state1, metrics1, _, initial) = conditional_runs
  for m4, m1 in zip(metrics4, metrics1):
    assert m4.keys() == m1.keys() and "reg_r1" in m4
    for key in m4:
      np.testing.assert_allclose(m4[key], m1[key], rtol=1e-4, atol=1e-5, err_msg=key)
  flat4 = jax.tree_util.tree_leaves_with_path(jax.device_get(state4.players))
  flat1 = jax.tree.leaves(jax.device_get(state1.players))
  for (path, a), b, before in zip(flat4, flat1, jax.tree.leaves(initial)):
    # Within 1 % of how far the three steps moved the leaf. Adam's first
    # update, lr * g / (|g| + eps), magnifies the round-off of an element
    # with g near eps: measured 1.1e-3 here, from one D element with
    # g = 8.6e-7 (with spectral norm + hinge in D, one G element at
    # g = 1.7e-8 gives 1.8 %; with SGD the gap is 2e-5 of the motion).
    moved = np.max(np.abs(np.asarray(b, np.float64) - before))
    assert np.max(np.abs(np.asarray(a, np.float64) - b)) <= 0.01 * moved, \
        jax.tree_util.keystr(path)


@pytest.mark.slow
def test_ema_follows_its_recurrence(conditional_runs):
  config, _, (state, _, params_after_step, _) = conditional_runs
  decay, start = config.ema.decay, config.ema.start_step
  expected = params_after_step[0]  # step 0 < start: a copy
  for t, params in enumerate(params_after_step[1:], start=1):
    rate = decay if t >= start else 0.0
    expected = jax.tree.map(lambda e, p: rate * e + (1 - rate) * p, expected, params)
  ema = jax.device_get(state.players["generator"].ema_params)
  for a, b in zip(jax.tree.leaves(ema), jax.tree.leaves(expected)):
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
  # The EMA is not simply the last weights, and it carries its own BN moments.
  last = jax.tree.leaves(params_after_step[-1])
  assert any(not np.allclose(a, b) for a, b in zip(jax.tree.leaves(ema), last))
  assert jax.tree.leaves(state.players["generator"].ema_collections)


def test_conditional_with_pacgan_is_refused():
  config = _conditional_config()
  config.pack_size = 2
  with pytest.raises(ConfigError, match="pack_size"):
    gan.GANFamily.from_config(config, IMAGE_SHAPE)


def _blobs(config):
  config.dataset.name = "blobs"
  config.num_train_steps = 10
  config.checkpoint_every_steps = config.eval_every_steps = 5
  return config


def _vae_config():
  config = _blobs(vae_mnist.get_config("tiny"))
  config.latent_dim = 2  # the manifold picture needs a 2-D latent space
  return config


# The straight runs, trained once: the resume tests and the picture tests share them.
@pytest.fixture(scope="module")
def conditional_workdir(tmp_path_factory, data_dir):
  workdir = str(tmp_path_factory.mktemp("conditional"))
  train_and_evaluate(_blobs(_conditional_config()), workdir)
  return workdir


@pytest.fixture(scope="module")
def vae_workdir(tmp_path_factory, data_dir):
  workdir = str(tmp_path_factory.mktemp("vae"))
  train_and_evaluate(_vae_config(), workdir)
  return workdir


@pytest.mark.slow
@pytest.mark.parametrize("name, make_config", [
    ("conditional", lambda: _blobs(_conditional_config())),
    ("vae", _vae_config),
])
def test_image_runs_resume_bitwise(tmp_path, request, name, make_config,
                                   assert_same_checkpoints):
  straight = request.getfixturevalue(f"{name}_workdir")
  resumed = str(tmp_path / f"{name}_resumed")
  first_half = make_config()
  first_half.num_train_steps = 5
  train_and_evaluate(first_half, resumed)
  train_and_evaluate(make_config(), resumed)
  assert_same_checkpoints(straight, resumed)
  # One grid per evaluation, animated in order; the resumed run's GIF has
  # the same frames as the straight run's.
  for workdir in (straight, resumed):
    samples = os.path.join(workdir, "samples")
    assert sorted(os.listdir(samples)) == ["progress.gif", "step_0000005.png",
                                           "step_0000010.png"]
  gifs = [PIL.Image.open(os.path.join(w, "samples", "progress.gif")) for w in (straight, resumed)]
  assert gifs[0].n_frames == gifs[1].n_frames == 2
  for frame in range(2):
    gifs[0].seek(frame)
    gifs[1].seek(frame)
    np.testing.assert_array_equal(np.asarray(gifs[0].convert("RGB")),
                                  np.asarray(gifs[1].convert("RGB")))


@pytest.mark.slow
def test_sample_cli_kinds(conditional_workdir, tmp_path):
  config, family, state = restore_for_inference(conditional_workdir)
  spec = resolved_dataset(config)
  raw = write_samples(family, state, spec, kind="raw", output=str(tmp_path / "s.npy"),
                      num=12, seed=0, labels=["3", "7"])
  assert raw.shape == (12, *IMAGE_SHAPE) and raw.dtype == np.float32
  assert np.all(np.abs(raw) <= 1.0)  # tanh output, the data's [-1, 1]
  np.testing.assert_array_equal(np.load(tmp_path / "s.labels.npy"), [3, 7] * 6)
  np.testing.assert_array_equal(np.load(tmp_path / "s.npy"), raw)
  # Labels reach the generator: the same latents under other labels differ.
  other = write_samples(family, state, spec, kind="raw", output=str(tmp_path / "o.npy"),
                        num=12, seed=0, labels=["4"])
  assert not np.allclose(raw, other)

  classes = write_samples(family, state, spec, kind="classes",
                          output=str(tmp_path / "classes.png"), num=3, seed=0)
  assert classes.shape == (NUM_CLASSES * 3, *IMAGE_SHAPE)
  np.testing.assert_array_equal(np.load(tmp_path / "classes.labels.npy"),
                                np.repeat(np.arange(NUM_CLASSES), 3))
  interpolation = write_samples(family, state, spec, kind="interpolation",
                                output=str(tmp_path / "interp.png"), num=2, seed=0, steps=5)
  assert interpolation.shape == (10, *IMAGE_SHAPE)
  for name in ("classes.png", "interp.png"):
    assert PIL.Image.open(tmp_path / name).size[0] > 0
  with pytest.raises(ConfigError, match="outside 0..9"):
    write_samples(family, state, spec, kind="raw", output=str(tmp_path / "bad.npy"),
                  num=4, seed=0, labels=["12"])


@pytest.mark.slow
def test_vae_picture_kinds(tmp_path, vae_workdir):
  config, family, state = restore_for_inference(vae_workdir)
  spec = resolved_dataset(config)
  test = np.random.default_rng(0).integers(0, 2, (20, *IMAGE_SHAPE)).astype(np.float32)

  pairs = write_samples(family, state, spec, kind="reconstructions",
                        output=str(tmp_path / "rec.png"), num=4, seed=0, test_images=test)
  inputs, outputs = pairs[0::2], pairs[1::2]
  assert all(any(np.array_equal(x, t) for t in test) for x in inputs)
  np.testing.assert_allclose(outputs, np.asarray(family.reconstruct(state, inputs)),
                             atol=1e-6)
  assert np.all((outputs > 0) & (outputs < 1))  # Bernoulli means

  path = write_samples(family, state, spec, kind="test_interpolation",
                       output=str(tmp_path / "interp.png"), num=2, seed=0, steps=5,
                       test_images=test).reshape(2, 5, *IMAGE_SHAPE)
  # Endpoints decode the test images' codes: they are reconstructions.
  rows = np.concatenate([path[:, 0], path[:, -1]])
  assert all(any(np.allclose(r, np.asarray(family.reconstruct(state, t[None]))[0], atol=1e-5)
                 for t in test) for r in rows)

  manifold = write_samples(family, state, spec, kind="manifold",
                           output=str(tmp_path / "manifold.png"), num=9, seed=0)
  assert manifold.shape == (9, *IMAGE_SHAPE)
  assert PIL.Image.open(tmp_path / "manifold.png").size[0] > 0
  with pytest.raises(ConfigError, match="needs an autoencoder"):
    write_samples(gan.GANFamily.from_config(_conditional_config(), IMAGE_SHAPE), state,
                  spec, kind="manifold", output=str(tmp_path / "x.png"), num=4, seed=0)
