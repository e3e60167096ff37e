"""`validate(config)`: every value a run depends on, checked before anything
is written or compiled.

Types and ranges are checked here; names (losses, models, datasets, ...) are
checked by their registries, which list the valid ones. All problems found
are reported together in one `ConfigError`.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import ml_collections

from gan_jax.registry import ConfigError

# key -> (what it must be, test). Keys a config lacks are skipped: families
# use different subsets.
_POSITIVE_INT = "a positive integer"
_NON_NEGATIVE_INT = "an integer >= 0"
_INTEGER = "an integer"
_MISSING = object()


def _is_int(value: Any) -> bool:
  return isinstance(value, int) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
  return (isinstance(value, (int, float)) and not isinstance(value, bool)
          and math.isfinite(value))


_RULES: dict[str, tuple[str, Callable[[Any], bool]]] = {
    "seed": (_INTEGER, _is_int),
    "num_seeds": (_POSITIVE_INT, lambda v: _is_int(v) and v >= 1),
    "shared_data_order": ("True or False", lambda v: isinstance(v, bool)),
    "batch_size": (_POSITIVE_INT, lambda v: _is_int(v) and v >= 1),
    "num_train_steps": (_POSITIVE_INT, lambda v: _is_int(v) and v >= 1),
    "log_every_steps": (_POSITIVE_INT, lambda v: _is_int(v) and v >= 1),
    "eval_every_steps": (_POSITIVE_INT, lambda v: _is_int(v) and v >= 1),
    "checkpoint_every_steps": (_POSITIVE_INT, lambda v: _is_int(v) and v >= 1),
    "keep_checkpoints": (_POSITIVE_INT, lambda v: _is_int(v) and v >= 1),
    "pack_size": (_POSITIVE_INT, lambda v: _is_int(v) and v >= 1),
    "n_critic": (_POSITIVE_INT, lambda v: _is_int(v) and v >= 1),
    "latent_dim": (_POSITIVE_INT, lambda v: _is_int(v) and v >= 1),
    "num_classes": (_NON_NEGATIVE_INT, lambda v: _is_int(v) and v >= 0),
    "latent_code.categories": (_NON_NEGATIVE_INT, lambda v: _is_int(v) and v >= 0),
    "latent_code.weight": ("a finite number >= 0", lambda v: _is_real(v) and v >= 0),
    "weight_clip": ("a finite number >= 0", lambda v: _is_real(v) and v >= 0),
    "ema.decay": ("a number in [0, 1)", lambda v: _is_real(v) and 0 <= v < 1),
    "ema.start_step": (_NON_NEGATIVE_INT, lambda v: _is_int(v) and v >= 0),
    "eval.num_samples": (_POSITIVE_INT, lambda v: _is_int(v) and v >= 1),
    "eval.seed": (_INTEGER, _is_int),
    "profile.start_step": (_NON_NEGATIVE_INT, lambda v: _is_int(v) and v >= 0),
    "profile.num_steps": (_NON_NEGATIVE_INT, lambda v: _is_int(v) and v >= 0),
    "loss.label_smoothing": ("a number in [0, 1)", lambda v: _is_real(v) and 0 <= v < 1),
    "allow_config_change": ("True or False", lambda v: isinstance(v, bool)),
}
_OPTIMIZER_RULES: dict[str, tuple[str, Callable[[Any], bool]]] = {
    "learning_rate": ("a finite number > 0", lambda v: _is_real(v) and v > 0),
    "b1": ("a number in [0, 1)", lambda v: _is_real(v) and 0 <= v < 1),
    "b2": ("a number in [0, 1)", lambda v: _is_real(v) and 0 <= v < 1),
    "eps": ("a finite number > 0", lambda v: _is_real(v) and v > 0),
    "weight_decay": ("a finite number >= 0", lambda v: _is_real(v) and v >= 0),
    "decay_steps": (_NON_NEGATIVE_INT, lambda v: _is_int(v) and v >= 0),
    "grad_clip_norm": ("a finite number >= 0", lambda v: _is_real(v) and v >= 0),
}
_REGULARIZER_RULES: dict[str, tuple[str, Callable[[Any], bool]]] = {
    "weight": ("a finite number >= 0", lambda v: _is_real(v) and v >= 0),
    "every": (_POSITIVE_INT, lambda v: _is_int(v) and v >= 1),
}


def _lookup(config: ml_collections.ConfigDict, key: str):
  node = config
  for part in key.split("."):
    if not hasattr(node, "keys") or part not in node:
      return _MISSING
    node = node[part]
  return node



def _all_rules(config: ml_collections.ConfigDict):
  yield from _RULES.items()
  for player in config.get("optimizer", {}):
    for name, rule in _OPTIMIZER_RULES.items():
      yield f"optimizer.{player}.{name}", rule
  for regularizer in config.get("regularizers", {}):
    for name, rule in _REGULARIZER_RULES.items():
      yield f"regularizers.{regularizer}.{name}", rule


def _non_finite_floats(node, prefix: str = ""):
  for key, value in node.items():
    if hasattr(value, "items"):
      yield from _non_finite_floats(value, f"{prefix}{key}.")
    elif isinstance(value, float) and not math.isfinite(value):
      yield f"{prefix}{key}"


def problems(config: ml_collections.ConfigDict) -> list[str]:
  """One 'key=value (must be ...)' entry per invalid value."""
  found = {}
  for key, (expected, valid) in _all_rules(config):
    value = _lookup(config, key)
    if value is not _MISSING and not valid(value):
      found[key] = f"{key}={value!r} (must be {expected})"
  for key in _non_finite_floats(config):
    found.setdefault(key, f"{key}={_lookup(config, key)!r} (must be finite)")
  return [found[k] for k in sorted(found)]


def validate(config: ml_collections.ConfigDict) -> None:
  found = problems(config)
  if found:
    raise ConfigError(f"Invalid config: {'; '.join(found)}.")
