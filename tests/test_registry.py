"""Registries, module construction and optimizer configuration."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from ml_collections import ConfigDict

from gan_jax.models import DISCRIMINATORS, GENERATORS, build_module
from gan_jax.optimizers import OPTIMIZERS, SCHEDULES, make_optimizer
from gan_jax.registry import ConfigError, Registry


def make_registry():
  reg = Registry("widget")
  reg.register("beta")("B")
  reg.register("alpha")("A")
  return reg


def test_register_and_get():
  reg = make_registry()
  assert reg.get("alpha") == "A" and reg.get("beta") == "B"
  assert reg.names() == ["alpha", "beta"]
  assert list(reg) == ["alpha", "beta"]
  assert "alpha" in reg and "gamma" not in reg


def test_register_returns_entry_for_decorator_use():
  reg = Registry("thing")

  @reg.register("f")
  def f():
    return 42

  assert f() == 42 and reg.get("f") is f


def test_unknown_name_lists_valid_names():
  reg = make_registry()
  with pytest.raises(ConfigError) as err:
    reg.get("alpah")
  msg = str(err.value)
  assert "widget" in msg and "alpah" in msg
  assert "Valid names: alpha, beta." in msg


def test_config_error_is_a_value_error():
  assert issubclass(ConfigError, ValueError)


def test_duplicate_registration_raises_and_keeps_original():
  reg = make_registry()
  with pytest.raises(ValueError, match="already registered"):
    reg.register("alpha")("other")
  assert reg.get("alpha") == "A"


def test_model_registries():
  assert "mlp" in GENERATORS and "affine_noise" in GENERATORS
  assert "mlp" in DISCRIMINATORS


def test_build_module_passes_options():
  d = build_module(DISCRIMINATORS, "mlp", {"hidden_units": 7, "num_hidden_layers": 1})
  assert type(d) is DISCRIMINATORS.get("mlp")
  assert d.hidden_units == 7 and d.num_hidden_layers == 1
  g = build_module(GENERATORS, "mlp", {"hidden_units": 5}, output_shape=(2,))
  assert tuple(g.output_shape) == (2,) and g.hidden_units == 5


def test_build_module_unknown_option_names_valid_options():
  with pytest.raises(ConfigError) as err:
    build_module(DISCRIMINATORS, "mlp", {"hiden_units": 7})
  msg = str(err.value)
  assert "hiden_units" in msg and "mlp" in msg
  valid = msg.split("Valid options:")[1]
  for option in ("hidden_units", "num_hidden_layers", "leaky_relu_slope"):
    assert option in valid
  # Flax's bookkeeping fields are not options.
  assert "parent" not in valid and "name" not in valid.replace("_", " ").split()


def test_build_module_fixed_arguments_not_offered_as_options():
  with pytest.raises(ConfigError) as err:
    build_module(GENERATORS, "mlp", {"bogus": 1, "hidden_units": 3}, output_shape=(2,))
  msg = str(err.value)
  assert "bogus" in msg
  valid = msg.split("Valid options:")[1]
  assert "hidden_units" in valid and "batch_norm" in valid
  assert "output_shape" not in valid


def test_build_module_unknown_name_lists_valid_names():
  with pytest.raises(ConfigError) as err:
    build_module(GENERATORS, "mpl", {})
  msg = str(err.value)
  assert "affine_noise" in msg and "mlp" in msg


# --- optimizers --------------------------------------------------------------

def opt_config(**kw):
  c = dict(name="adam", learning_rate=1e-2, b1=0.5, b2=0.999, eps=1e-8,
           weight_decay=0.0, schedule="constant", decay_steps=0, grad_clip_norm=0.0)
  c.update(kw)
  return ConfigDict(c)


def first_update(tx, grads):
  def step(g):
    params = jnp.zeros_like(g)
    return tx.update(g, tx.init(params), params)[0]

  return np.asarray(jax.jit(step)(grads))


def test_optimizer_registry_holds_the_documented_names():
  assert {"adam", "adamw", "rmsprop", "sgd"} <= set(OPTIMIZERS.names())
  assert {"constant", "cosine", "linear_decay"} <= set(SCHEDULES.names())


def test_unknown_optimizer_raises_config_error_listing_names():
  with pytest.raises(ConfigError) as err:
    make_optimizer(opt_config(name="adamm"))
  msg = str(err.value)
  assert "adamm" in msg
  for name in ("adam", "adamw", "rmsprop", "sgd"):
    assert name in msg


@pytest.mark.parametrize("lr", [0.0, -1e-3])
def test_non_positive_learning_rate_raises(lr):
  with pytest.raises(ConfigError, match="learning_rate"):
    make_optimizer(opt_config(learning_rate=lr))


def test_unknown_schedule_raises():
  with pytest.raises(ConfigError, match="constant"):
    make_optimizer(opt_config(schedule="exponential", decay_steps=10))


@pytest.mark.parametrize("schedule", ["linear_decay", "cosine"])
def test_decaying_schedule_needs_decay_steps(schedule):
  with pytest.raises(ConfigError, match="decay_steps"):
    make_optimizer(opt_config(schedule=schedule, decay_steps=0))


def test_sgd_first_step_is_minus_lr_times_grad():
  g = jnp.array([0.5, -2.0, 0.0])
  np.testing.assert_allclose(first_update(make_optimizer(opt_config(name="sgd", b1=0.0)), g),
                             -1e-2 * np.asarray(g), rtol=1e-6)


def test_adam_first_step_is_minus_lr_times_sign():
  # After one step Adam's bias-corrected update is -lr * g / (|g| + eps).
  g = jnp.array([0.5, -2.0, 3e-3])
  np.testing.assert_allclose(first_update(make_optimizer(opt_config()), g),
                             -1e-2 * np.sign(np.asarray(g)), rtol=1e-4)


def test_grad_clip_norm_clips_global_norm():
  g = jnp.array([3.0, 4.0])  # norm 5 -> clipped to norm 1: (0.6, 0.8)
  tx = make_optimizer(opt_config(name="sgd", b1=0.0, grad_clip_norm=1.0))
  np.testing.assert_allclose(first_update(tx, g), -1e-2 * np.array([0.6, 0.8]), rtol=1e-6)


def updates(tx, g, num_steps):
  """The first `num_steps` updates of `tx` under a constant gradient `g`."""

  @jax.jit
  def run(g):
    params = jnp.zeros_like(g)
    state = tx.init(params)
    out = []
    for _ in range(num_steps):
      u, state = tx.update(g, state, params)
      out.append(u[0])
    return jnp.stack(out)

  return np.asarray(run(g))


def test_linear_decay_schedule_reaches_zero():
  tx = make_optimizer(opt_config(name="sgd", b1=0.0, schedule="linear_decay", decay_steps=2))
  steps = updates(tx, jnp.ones(1), 3)
  # lr at steps 0, 1, 2: 1e-2, 5e-3, 0.
  np.testing.assert_allclose(steps, [-1e-2, -5e-3, 0.0], rtol=1e-6, atol=1e-9)


def test_a_schedule_without_a_length_follows_the_run():
  tx = make_optimizer(opt_config(name="sgd", b1=0.0, schedule="linear_decay"),
                      num_train_steps=4)
  np.testing.assert_allclose(updates(tx, jnp.ones(1), 5),
                             [-1e-2, -7.5e-3, -5e-3, -2.5e-3, 0.0], rtol=1e-6, atol=1e-9)


def test_an_explicit_schedule_length_unlike_the_run_is_one_line():
  from gan_jax.optimizers import schedule_note

  c = ConfigDict(dict(num_train_steps=100, optimizer=dict(
      generator=opt_config(schedule="linear_decay", decay_steps=50).to_dict(),
      discriminator=opt_config(schedule="cosine").to_dict(),
      critic=opt_config(schedule="linear_decay", decay_steps=100).to_dict())))
  note = schedule_note(c)
  assert "optimizer.generator.decay_steps=50" in note and "\n" not in note
  assert "discriminator" not in note and "critic" not in note
  c.optimizer.generator.decay_steps = 100
  assert schedule_note(c) is None
