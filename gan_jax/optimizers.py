"""Optimizers and learning-rate schedules, configured per player.

Each player has its own `ConfigDict` (name, learning_rate, betas, schedule),
so the two-time-scale update rule (Heusel et al. 2017) is a config change.
"""

from __future__ import annotations

import optax

from gan_jax.registry import ConfigError, Registry

OPTIMIZERS: Registry = Registry("optimizer")
SCHEDULES: Registry = Registry("learning-rate schedule")

OPTIMIZERS.register("adam")(lambda lr, c: optax.adam(lr, b1=c.b1, b2=c.b2, eps=c.eps))
OPTIMIZERS.register("adamw")(
    lambda lr, c: optax.adamw(lr, b1=c.b1, b2=c.b2, eps=c.eps, weight_decay=c.weight_decay))
OPTIMIZERS.register("rmsprop")(lambda lr, c: optax.rmsprop(lr, decay=c.b2, eps=c.eps))
OPTIMIZERS.register("sgd")(lambda lr, c: optax.sgd(lr, momentum=c.b1 or None))

SCHEDULES.register("constant")(lambda c: optax.constant_schedule(c.learning_rate))
SCHEDULES.register("linear_decay")(
    lambda c: optax.linear_schedule(c.learning_rate, 0.0, c.decay_steps))
SCHEDULES.register("cosine")(
    lambda c: optax.cosine_decay_schedule(c.learning_rate, c.decay_steps))


def make_optimizer(config) -> optax.GradientTransformation:
  """Builds an optax transformation from one player's optimizer config."""
  if config.learning_rate <= 0:
    raise ConfigError(f"learning_rate must be positive, got {config.learning_rate}.")
  if config.schedule != "constant" and config.decay_steps <= 0:
    raise ConfigError(f"schedule '{config.schedule}' needs decay_steps > 0.")
  schedule = SCHEDULES.get(config.schedule)(config)
  tx = OPTIMIZERS.get(config.name)(schedule, config)
  if config.grad_clip_norm > 0:
    tx = optax.chain(optax.clip_by_global_norm(config.grad_clip_norm), tx)
  return tx
