"""bfloat16 compute: which layers compute in bf16, which stay float32 (the
precision boundaries of gan_jax.precision), and that a 2-D GAN trained in bf16
tracks the float32 run."""

import os
import subprocess
import sys

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import dcgan_mnist_classic, ring8, sngan_mnist, vae_mnist
from gan_jax import backend
from gan_jax.data import dataset_spec
from gan_jax.families import build_family
from gan_jax.metric_writer import read_metrics
from gan_jax.models.layers import SNConv, SNDense
from gan_jax.registry import ConfigError
from gan_jax.sharding import make_mesh
from gan_jax.step import make_train_step

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_unknown_compute_dtype_lists_the_valid_ones():
  config = ring8.get_config("tiny")
  config.compute_dtype = "float16"
  with pytest.raises(ConfigError, match="float32, bfloat16"):
    build_family(config, (2,))


def test_a_model_without_a_dtype_field_refuses_bf16():
  config = ring8.get_config("tiny")
  config.generator.name = "affine_noise"
  config.compute_dtype = "bfloat16"
  with pytest.raises(ConfigError, match="affine_noise' computes in float32 only"):
    build_family(config, (1,))


def _dcgan_bf16():
  config = dcgan_mnist_classic.get_config("tiny")
  config.dataset.name = "blobs"
  config.compute_dtype = "bfloat16"
  config.discriminator.batch_norm = True
  spec = dataset_spec(config)
  return config, build_family(config, spec.example_shape), spec


WEIGHTED_LAYERS = (nn.Dense, nn.Conv, nn.ConvTranspose, SNDense, SNConv)
BF16, F32 = jnp.dtype(jnp.bfloat16), jnp.dtype(jnp.float32)


def _layer_dtypes(fn, *args):
  """The output dtype of every weighted layer `fn` runs, in call order (a
  layer computes in its output's dtype)."""
  dtypes = []

  def record(next_fun, args, kwargs, context):
    out = next_fun(*args, **kwargs)
    if context.method_name == "__call__" and isinstance(context.module, WEIGHTED_LAYERS):
      dtypes.append(jnp.dtype(out.dtype))
    return out

  with nn.intercept_methods(record):
    jax.eval_shape(fn, *args)
  return dtypes


def _gan_case(config_module, num_classes=0):
  config = config_module.get_config("tiny")
  if config_module is not ring8:
    config.dataset.name = "blobs"
  config.num_classes = num_classes
  return config


@pytest.mark.parametrize("config", [
    _gan_case(ring8), _gan_case(dcgan_mnist_classic), _gan_case(sngan_mnist, num_classes=3),
], ids=["mlp", "dcgan", "sngan_resnet_conditional"])
def test_bf16_runs_the_precision_boundaries_in_float32(config):
  """G's output layer, D's input layer and D's logit compute in float32; the
  hidden layers between them in bfloat16."""
  config.compute_dtype = "bfloat16"
  spec = dataset_spec(config)
  family = build_family(config, spec.example_shape)
  state = jax.eval_shape(lambda: family.create_state(config))
  g, d = state.players["generator"], state.players["discriminator"]
  labels = jnp.zeros((4,), jnp.int32) if family.num_classes else None
  z = jax.ShapeDtypeStruct((4, family.latent_dim), jnp.float32)
  x = jax.ShapeDtypeStruct((4, *spec.example_shape), jnp.float32)

  g_layers = _layer_dtypes(lambda g, z: g.apply(g.params, z, labels, train=False)[0], g, z)
  d_layers = _layer_dtypes(lambda d, x: d.apply(d.params, x, labels, train=False)[0], d, x)
  assert g_layers[-1] == F32  # the sample
  assert set(g_layers[:-1]) == {BF16}  # every hidden layer of G
  assert d_layers[0] == F32  # reads the data
  assert d_layers[-1] == F32  # the logit
  assert BF16 in d_layers
  samples = jax.eval_shape(lambda g, z: g.apply(g.params, z, labels, train=False)[0], g, z)
  logits = jax.eval_shape(lambda d, x: d.apply(d.params, x, labels, train=False)[0], d, x)
  assert samples.dtype == logits.dtype == jnp.float32


def test_bf16_output_layer_resolves_below_the_bf16_grid():
  """A float32 output layer gives samples between bfloat16's representable
  values; a bf16 one would round each to the grid (spacing 2^-8 near 1)."""
  config = ring8.get_config("tiny")
  config.compute_dtype = "bfloat16"
  family = build_family(config, (2,))
  g = family.create_state(config).players["generator"]
  z = jax.random.normal(jax.random.PRNGKey(1), (256, family.latent_dim))
  samples = np.asarray(g.apply(g.params, z, train=False)[0])
  on_grid = samples == samples.astype(jnp.bfloat16).astype(np.float32)
  assert on_grid.mean() < 0.1


def test_bf16_keeps_state_and_metrics_in_float32():
  config, family, spec = _dcgan_bf16()
  state = jax.eval_shape(lambda: family.create_state(config))  # traced, not run
  mesh = make_mesh()
  batches = {"x": jax.ShapeDtypeStruct((1, config.batch_size, *spec.example_shape),
                                       jnp.float32)}
  new_state, metrics = jax.eval_shape(make_train_step(family, mesh), state, batches)
  float_dtypes = {leaf.dtype for leaf in jax.tree.leaves(new_state)
                  if jnp.issubdtype(leaf.dtype, jnp.floating)}
  assert float_dtypes == {jnp.dtype(jnp.float32)}  # params, Adam moments, BN stats, EMA
  assert all(m.dtype == jnp.float32 for m in jax.tree.leaves(metrics))


def test_vae_bf16_keeps_its_input_and_output_layers_in_float32():
  config = vae_mnist.get_config("tiny")
  config.compute_dtype = "bfloat16"
  spec = dataset_spec(config)
  family = build_family(config, spec.example_shape)
  params = jax.eval_shape(lambda: family.create_state(config)).players["autoencoder"].params
  x = jax.ShapeDtypeStruct((4, *spec.example_shape), jnp.float32)
  layers = _layer_dtypes(lambda p, x: family._decode(p, family._encode(p, x)[0]), params, x)
  assert layers[0] == F32 and layers[-1] == F32 and BF16 in layers


def _start_ring8_run(workdir, compute_dtype, steps=3000):
  """A ring8 run in its own single-device process (the two runs go side by
  side, one per core, rather than on the session's 4 simulated devices), on
  the backend's CPU kernels: XLA's own, which widen bf16 dots to float32."""
  flags = [f"--config.num_train_steps={steps}",
           f"--config.optimizer.generator.decay_steps={steps}",
           f"--config.optimizer.discriminator.decay_steps={steps}",
           "--config.log_every_steps=10", f"--config.eval_every_steps={steps}",
           f"--config.checkpoint_every_steps={steps}", f"--config.compute_dtype={compute_dtype}"]
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=1")
  env.pop(backend.CPU_LIBRARY_FUSIONS_ENV, None)  # the backend's own choice
  return subprocess.Popen(
      [sys.executable, "-m", "gan_jax.main", "--config=configs/ring8.py",
       f"--workdir={workdir}", *flags],
      cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _finish_ring8_run(process, workdir):
  _, stderr = process.communicate()
  assert process.returncode == 0, stderr[-2000:]
  rows = read_metrics(str(workdir))
  losses = np.array([r["loss_d"] for r in rows if "loss_d" in r])
  final = [r for r in rows if "eval/modes" in r][-1]
  return losses, final


@pytest.mark.slow
def test_bf16_ring8_tracks_float32(tmp_path, ring8_arrays):  # ring8 prepared once, first
  runs = {dtype: _start_ring8_run(tmp_path / dtype, dtype) for dtype in ("float32", "bfloat16")}
  losses32, final32 = _finish_ring8_run(runs["float32"], tmp_path / "float32")
  losses16, final16 = _finish_ring8_run(runs["bfloat16"], tmp_path / "bfloat16")
  assert not np.array_equal(losses32, losses16)  # it did compute differently
  # At the first logged step the runs differ by bf16 round-off only (0.003
  # here; by step 40 the game's chaos has grown it to 0.08)...
  assert abs(losses16[0] - losses32[0]) < 0.02  # step 10
  # ...later the game's chaos separates the trajectories (two float32 seeds
  # differ as much), but the loss level stays the same...
  assert abs(losses16.mean() - losses32.mean()) < 0.05
  windows32 = losses32.reshape(10, -1).mean(axis=1)
  windows16 = losses16.reshape(10, -1).mean(axis=1)
  assert np.max(np.abs(windows16 - windows32)) < 0.3
  # ...and both find every mode. Sample quality after 3,000 steps is a noisy
  # one-seed figure: runs are still converging, and seeds of one dtype differ
  # more than this pair does (experiments/results/precision_ring8.json). This
  # seed's bf16 run gave 0.88 on an AVX2 CPU and 0.80 on an AVX512_BF16 one
  # (float32: 0.93, 0.92); what holds on both is a fraction far above the
  # 0.07 this test once caught, which one bf16 seed in ten still reaches on
  # YNNPACK's kernels on an AMD AVX512_BF16 CPU (hence the pinned kernels).
  assert final32["eval/modes"] == final16["eval/modes"] == 8
  assert final32["eval/high_quality_fraction"] > 0.6
  assert final16["eval/high_quality_fraction"] > 0.6
