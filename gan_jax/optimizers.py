"""Optimizers and learning-rate schedules, configured per player.

Each player has its own `ConfigDict` (name, learning_rate, betas, schedule),
so the two-time-scale update rule (Heusel et al. 2017) is a config change.

A decaying schedule lasts `decay_steps`; left at 0 it follows the run
(`num_train_steps`), so `--config.num_train_steps=N` decays over N steps.
"""

from __future__ import annotations

from typing import Optional

import optax

from gan_jax.registry import ConfigError, Registry

OPTIMIZERS: Registry = Registry("optimizer")
SCHEDULES: Registry = Registry("learning-rate schedule")

OPTIMIZERS.register("adam")(lambda lr, c: optax.adam(lr, b1=c.b1, b2=c.b2, eps=c.eps))
OPTIMIZERS.register("adamw")(
    lambda lr, c: optax.adamw(lr, b1=c.b1, b2=c.b2, eps=c.eps, weight_decay=c.weight_decay))
OPTIMIZERS.register("rmsprop")(lambda lr, c: optax.rmsprop(lr, decay=c.b2, eps=c.eps))
OPTIMIZERS.register("sgd")(lambda lr, c: optax.sgd(lr, momentum=c.b1 or None))

SCHEDULES.register("linear_decay")(
    lambda c, steps: optax.linear_schedule(c.learning_rate, 0.0, steps))
SCHEDULES.register("cosine")(
    lambda c, steps: optax.cosine_decay_schedule(c.learning_rate, steps))
SCHEDULES.register("constant")(lambda c, steps: optax.constant_schedule(c.learning_rate))


def schedule_length(config, num_train_steps: Optional[int]) -> int:
  """Steps a decaying schedule lasts: `decay_steps`, or the run's length."""
  steps = config.decay_steps or num_train_steps or 0
  if config.schedule != "constant" and steps <= 0:
    raise ConfigError(f"schedule '{config.schedule}' needs decay_steps > 0 or a run "
                      f"length (num_train_steps).")
  return steps


def schedule_note(config) -> Optional[str]:
  """One line naming the players whose explicit schedule length is not the
  run's; None when every schedule lasts the run."""
  unlike = [f"optimizer.{player}.decay_steps={c.decay_steps}"
            for player, c in config.optimizer.items()
            if c.schedule != "constant" and c.decay_steps
            and c.decay_steps != config.num_train_steps]
  if not unlike:
    return None
  return (f"Learning-rate schedules that do not last the run's num_train_steps="
          f"{config.num_train_steps}: {', '.join(unlike)} (decay_steps=0 follows the run).")


def make_optimizer(config, num_train_steps: Optional[int] = None
                   ) -> optax.GradientTransformation:
  """Builds an optax transformation from one player's optimizer config."""
  if config.learning_rate <= 0:
    raise ConfigError(f"learning_rate must be positive, got {config.learning_rate}.")
  schedule = SCHEDULES.get(config.schedule)(config, schedule_length(config, num_train_steps))
  tx = OPTIMIZERS.get(config.name)(schedule, config)
  if config.grad_clip_norm > 0:
    tx = optax.chain(optax.clip_by_global_norm(config.grad_clip_norm), tx)
  return tx
