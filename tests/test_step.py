"""The data-parallel step: device-count independence and exact gradients."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.sharding import NamedSharding

from configs import dcgan_mnist_classic, default
from gan_jax import gan, losses
from gan_jax.registry import ConfigError
from gan_jax.sharding import BATCH_SPEC, make_mesh, replicated
from gan_jax.state import Player
from gan_jax.step import check_global_batch, make_train_step

BATCH = 32
NUM_STEPS = 3


def _config(**overrides):
  c = default.get_config()
  c.generator.batch_norm = True  # exercises cross-replica batch norm
  c.loss.name = "relativistic_average"  # centres on global batch means
  c.regularizers.gradient_penalty.weight = 1.0
  c.n_critic = 2
  c.pack_size = 2
  c.generator.hidden_units = c.discriminator.hidden_units = 32
  for key, value in overrides.items():
    c[key] = value
  return c


def _batches(step, n_critic=2):
  rng = np.random.default_rng(step)
  return {"x": rng.normal(size=(n_critic, BATCH, 2)).astype(np.float32)}


def _run(config, num_devices):
  """(initial players, final state, per-step metrics) of NUM_STEPS steps."""
  mesh = make_mesh(jax.devices()[:num_devices])
  family = gan.GANFamily.from_config(config, (2,))
  state = jax.jit(lambda: family.create_state(config), out_shardings=replicated(mesh))()
  initial = jax.device_get(state.players)
  step_fn = make_train_step(family, mesh)
  sharding = NamedSharding(mesh, BATCH_SPEC)
  history = []
  for t in range(NUM_STEPS):
    batches = jax.device_put(_batches(t, config.n_critic), sharding)
    state, metrics = step_fn(state, batches)
    history.append(jax.device_get(metrics))
  return initial, state, history


def _is_output_bias(path):
  return path.startswith("['discriminator']") and path.endswith("['Dense_3']['bias']")


@pytest.mark.slow
@pytest.mark.parametrize("loss, optimizer, joint", [
  ("non_saturating", "adam", False),
  # RaSGAN ignores a constant shift of D's output, so D's output bias (and a
  # hidden unit's bias, where the unit is linear over the whole batch) has a
  # zero gradient; Adam would scale its round-off up to ~lr per update, so
  # this case uses SGD, which leaves such parameters where they are. Its
  # four-device run also judges real and fake in one D pass
  # (joint_discriminator_batch): the same function for this D, which has no
  # batch-dependent layer, so it must match the one-device two-pass run.
  ("relativistic_average", "sgd", True),
])
def test_four_devices_match_one_device(loss, optimizer, joint):
  config = _config()
  config.loss.name = loss
  if optimizer == "sgd":
    for player in ("generator", "discriminator"):
      config.optimizer[player].update(name="sgd", b1=0.0, learning_rate=0.1)
  initial, state1, metrics1 = _run(config, 1)
  config.joint_discriminator_batch = joint
  _, state4, metrics4 = _run(config, 4)
  for m4, m1 in zip(metrics4, metrics1):
    assert m4.keys() == m1.keys()
    for key in m4:
      np.testing.assert_allclose(m4[key], m1[key], rtol=2e-5, atol=1e-6, err_msg=key)
  flat0 = jax.tree.leaves(initial)
  flat4 = jax.tree_util.tree_leaves_with_path(jax.device_get(state4.players))
  flat1 = jax.tree.leaves(jax.device_get(state1.players))
  for (path, a), b, before in zip(flat4, flat1, flat0):
    path = jax.tree_util.keystr(path)
    moved = np.max(np.abs(np.asarray(b, np.float64) - before))
    if loss == "relativistic_average" and _is_output_bias(path):
      assert moved < 1e-6  # no gradient: only round-off moves it
      continue
    # Measured: within 1e-5 of how far training moved the leaf.
    assert np.max(np.abs(np.asarray(a, np.float64) - b)) <= 0.01 * moved, path
  assert int(state4.step) == NUM_STEPS
  # The state stays replicated on every device.
  for leaf in jax.tree.leaves(state4):
    assert leaf.sharding.is_fully_replicated
    assert len(leaf.sharding.device_set) == 4


def test_discriminator_gradient_equals_global_batch_gradient():
  """With SGD(lr=1), one critic update moves D by exactly -grad of the
  global-batch loss; computed here without shard_map as a second opinion."""
  config = _config(n_critic=1, pack_size=1)
  config.generator.batch_norm = False
  config.optimizer.discriminator.name = "sgd"
  config.optimizer.discriminator.b1 = 0.0
  config.optimizer.discriminator.learning_rate = 1.0
  mesh = make_mesh(jax.devices()[:4])
  family = gan.GANFamily.from_config(config, (2,))
  state = jax.jit(lambda: family.create_state(config), out_shardings=replicated(mesh))()
  d0 = jax.device_get(state.players["discriminator"].params)
  g0 = jax.device_get(state.players["generator"].params)
  batches = _batches(0, 1)
  noise = family.draw_noise(jax.random.fold_in(state.rng, 0), BATCH)
  new_state, _ = make_train_step(family, mesh, donate=False)(
      state, jax.device_put(batches, NamedSharding(mesh, BATCH_SPEC)))

  real = batches["x"][0]
  fake = family.generator.apply({"params": g0}, noise["critic"]["z"][:, 0], train=False)

  def reference_loss(d_params):
    def discriminate(x):
      return family.discriminator.apply({"params": d_params}, x)
    pair = losses.relativistic_average(discriminate(real), discriminate(fake))
    t = noise["critic"]["interpolation"][:, 0][:, None]
    mixed = t * real + (1 - t) * fake
    grads = jax.vmap(jax.grad(lambda x: discriminate(x[None])[0]))(mixed)
    penalty = jnp.mean((jnp.sqrt(jnp.sum(grads ** 2, axis=1) + 1e-12) - 1) ** 2)
    return pair.discriminator + penalty

  expected = jax.tree.map(lambda p, g: p - g, d0, jax.grad(reference_loss)(d0))
  got = jax.device_get(new_state.players["discriminator"].params)
  for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(expected)):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_joint_discriminator_batch_shares_batch_norm_statistics():
  """With batch norm in D, the joint pass normalises real and fake with the
  statistics of both: D's outputs are those of one module call on the
  concatenated batch, and differ from two separate calls."""
  config = dcgan_mnist_classic.get_config("tiny")
  config.discriminator.axis_name = None  # called outside shard_map here
  shape = (28, 28, 1)
  rng = np.random.default_rng(0)
  real, fake = (jnp.asarray(rng.normal(size=(4, *shape)).astype(np.float32)) for _ in range(2))
  family = gan.GANFamily.from_config(config, shape)
  # An "rbg" key: eager threefry initialisation takes many seconds on CPU.
  variables = family.discriminator.init(jax.random.key(0, impl="rbg"), real, train=False)
  d = Player.create(family.discriminator, optax.sgd(0.1), variables)
  outputs = {joint: dataclasses.replace(family, joint_discriminator_batch=joint)._judge_in_turn(
      d, d.params, real, None, fake, None) for joint in (False, True)}
  variables = {"params": d.params, **d.collections}
  together, stats = family.discriminator.apply(
      variables, jnp.concatenate([real, fake]), train=True, mutable=list(d.collections))
  joint, separate = outputs[True], outputs[False]
  np.testing.assert_allclose(jnp.concatenate([joint.d_real, joint.d_fake]), together,
                             rtol=1e-5, atol=1e-6)
  jax.tree.map(np.testing.assert_array_equal, joint.after_both, stats)
  alone = [family.discriminator.apply(variables, x, train=True, mutable=list(d.collections))[0]
           for x in (real, fake)]
  np.testing.assert_allclose(jnp.concatenate([separate.d_real, separate.d_fake]),
                             jnp.concatenate(alone), rtol=1e-5, atol=1e-6)
  assert float(jnp.max(jnp.abs(together - jnp.concatenate(alone)))) > 1e-3


def test_noise_does_not_depend_on_device_count():
  config = _config()
  family = gan.GANFamily.from_config(config, (2,))
  key = jax.random.PRNGKey(3)
  for n in (1, 2, 4):
    mesh = make_mesh(jax.devices()[:n])
    drawn = jax.jit(family.draw_noise, static_argnums=1,
                    out_shardings=NamedSharding(mesh, jax.sharding.PartitionSpec("data")))(key, BATCH)
    reference = family.draw_noise(key, BATCH)
    for a, b in zip(jax.tree.leaves(drawn), jax.tree.leaves(reference)):
      np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.slow
def test_state_is_donated():
  config = _config()
  mesh = make_mesh(jax.devices()[:2])
  family = gan.GANFamily.from_config(config, (2,))
  state = jax.jit(lambda: family.create_state(config), out_shardings=replicated(mesh))()
  old_leaf = state.players["generator"].params["Dense_0"]["kernel"]
  step_fn = make_train_step(family, mesh)
  step_fn(state, jax.device_put(_batches(0), NamedSharding(mesh, BATCH_SPEC)))
  assert old_leaf.is_deleted()


@pytest.mark.parametrize("batch, devices, pack, message", [
    (30, 4, 1, "not divisible by the 4 devices"),
    (8, 4, 4, "not a multiple of 4"),
    (0, 1, 1, "must be positive"),
])
def test_impossible_batch_is_refused_before_compiling(batch, devices, pack, message):
  mesh = make_mesh(jax.devices()[:devices])
  with pytest.raises(ConfigError, match=message):
    check_global_batch(batch, mesh, per_replica_multiple=pack)


def test_pack_concatenates_consecutive_examples():
  x = jnp.arange(4 * 3).reshape(4, 3)
  packed = gan.pack(x, 2)
  np.testing.assert_array_equal(packed, [[0, 1, 2, 3, 4, 5], [6, 7, 8, 9, 10, 11]])
  images = jnp.arange(4 * 2 * 2 * 1).reshape(4, 2, 2, 1)
  packed = gan.pack(images, 2)
  assert packed.shape == (2, 2, 2, 2)
  np.testing.assert_array_equal(packed[0, ..., 0], images[0, ..., 0])
  np.testing.assert_array_equal(packed[0, ..., 1], images[1, ..., 0])


def test_adam_update_is_what_optax_computes():
  """The player update is optax's, applied to the averaged gradient."""
  from gan_jax.state import Player
  import flax.linen as nn

  module = nn.Dense(3)
  variables = module.init(jax.random.PRNGKey(0), jnp.ones((1, 2)))
  tx = optax.adam(0.1)
  player = Player.create(module, tx, variables)
  grads = jax.tree.map(jnp.ones_like, player.params)
  updated = player.apply_gradients(grads)
  updates, _ = tx.update(grads, tx.init(variables["params"]), variables["params"])
  expected = optax.apply_updates(variables["params"], updates)
  for a, b in zip(jax.tree.leaves(updated.params), jax.tree.leaves(expected)):
    np.testing.assert_array_equal(a, b)


def test_the_environment_overrides_the_cpu_library_fusions(monkeypatch):
  from gan_jax import backend
  from gan_jax.registry import ConfigError

  monkeypatch.delenv(backend.CPU_LIBRARY_FUSIONS_ENV, raising=False)
  assert backend.compiler_options("cpu") == {"xla_cpu_experimental_ynn_fusion_type": ""}
  monkeypatch.setenv(backend.CPU_LIBRARY_FUSIONS_ENV, "xla_default")
  assert backend.compiler_options("cpu") == {}  # the option left to XLA
  assert backend.record("cpu")["compiler_options"] == {}  # and recorded so
  assert backend.compiler_options("gpu") == {}
  monkeypatch.setenv(backend.CPU_LIBRARY_FUSIONS_ENV, "all")
  with pytest.raises(ConfigError, match="valid: none, dots, xla_default"):
    backend.compiler_options("cpu")


@pytest.mark.slow
def test_the_cpu_compiler_options_take_effect_and_change_only_round_off():
  """The step compiled with gan_jax.backend's CPU options (XLA's own kernels)
  and with XLA:CPU's default library fusions computes the same update."""
  from configs import dcgan_mnist
  from gan_jax import backend
  from gan_jax.families import build_family

  mesh = make_mesh(jax.devices()[:1])
  config = dcgan_mnist.get_config("tiny")
  family = build_family(config, (28, 28, 1))
  batches = {"x": np.random.default_rng(0).uniform(-1, 1, (1, 16, 28, 28, 1)).astype(np.float32)}
  results = {}
  for choice, options in (("chosen", None),
                          ("xla_default", backend.cpu_compiler_options("xla_default"))):
    state = jax.jit(lambda: family.create_state(config), out_shardings=replicated(mesh))()
    compiled = make_train_step(family, mesh, donate=False,
                               compiler_options=options).lower(state, batches).compile()
    results[choice] = (jax.device_get(compiled(state, batches)), "ynn" in compiled.as_text())
  (ours, ours_ynn), (default, default_ynn) = results["chosen"], results["xla_default"]
  assert default_ynn and not ours_ynn  # the option took effect
  for mine, theirs in zip(jax.tree.leaves(ours), jax.tree.leaves(default), strict=True):
    np.testing.assert_allclose(mine, theirs, rtol=1e-4, atol=1e-5)
