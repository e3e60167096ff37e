"""What a saved `config.json` means: the values of keys it lacks, and the
values it computes with.

One rule decides what a key absent from an older `config.json` meant:

* entries that registries contribute (a model's options, a loss's options,
  every regulariser's entry) mean their registered defaults, for the
  component that config names: a regulariser it lacks was off (weight 0);
* other keys added after runs existed are listed in `ABSENT_MEANS`, at the
  value that computes what runs without them computed (which is not always
  today's default).

`complete(saved)` fills both in; resuming, evaluating and sampling read saved
configs through it, so adding a registered component or a listed key never
stops an older workdir from working. A new key that is neither must be added
to `ABSENT_MEANS` (`tests/test_config_versions.py` fails until it is).
"""

from __future__ import annotations

import copy
from typing import Any

from gan_jax import losses, regularizers
from gan_jax.models import DISCRIMINATORS, GENERATORS, declared_options
from gan_jax.models.autoencoder import DECODERS, ENCODERS

ABSENT_MEANS = {
    "compute_dtype": "float32",
    "num_classes": 0,
    "augment.policy": "",
    "ema.decay": 0.0,
    "ema.start_step": 0,
    "joint_discriminator_batch": False,
    # Before the key (commit 34641e8), XLA:CPU chose its library kernels itself.
    "cpu_library_fusions": "xla_default",
}
# Config sections that name a registered model, and its registry.
MODEL_SECTIONS = {"generator": GENERATORS, "discriminator": DISCRIMINATORS,
                  "encoder": ENCODERS, "decoder": DECODERS}


def registered_defaults(config: dict) -> dict[str, Any]:
  """Dotted key -> default of every registry-contributed entry `config` can
  hold, for the components it names (unregistered names contribute none)."""
  defaults = {}
  for section, registry in MODEL_SECTIONS.items():
    name = config.get(section, {}).get("name")
    if name in registry:
      defaults.update({f"{section}.{k}": v
                       for k, v in declared_options(registry.get(name)).items()})
  if "loss" in config:
    for name in losses.ADVERSARIAL_LOSSES.names():
      for option, value in losses.ADVERSARIAL_LOSSES.get(name).options:
        defaults[f"loss.{name}.{option}"] = value
  if "regularizers" in config:
    for name, entry in regularizers.regularizer_config().items():
      defaults.update({f"regularizers.{name}.{k}": v for k, v in entry.items()})
  return defaults


def _absent_meanings(config: dict) -> dict[str, Any]:
  return {**ABSENT_MEANS, **registered_defaults(config)}


def complete(saved: dict) -> dict:
  """`saved` with every absent key filled in with what its absence meant."""
  filled = copy.deepcopy(saved)
  for key, value in _absent_meanings(saved).items():
    *parents, leaf = key.split(".")
    node = filled
    for part in parents:
      node = node.setdefault(part, {})
    node.setdefault(leaf, list(value) if isinstance(value, tuple) else value)
  return filled


def effective(flat: dict[str, Any]) -> dict[str, Any]:
  """Flat config values as the run uses them: a decay schedule without an
  explicit length (decay_steps=0) lasts num_train_steps; a constant one has
  no length."""
  resolved = dict(flat)
  for key, value in flat.items():
    if key.startswith("optimizer.") and key.endswith(".decay_steps"):
      schedule = flat.get(key[:-len("decay_steps")] + "schedule", "constant")
      if schedule == "constant":
        resolved[key] = 0
      elif value == 0 and "num_train_steps" in flat:
        resolved[key] = flat["num_train_steps"]
  return resolved
