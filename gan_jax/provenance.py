"""What a run ran with: its resolved config and its environment, in the workdir.

`config.json` is the resolved config; a restart on the same workdir compares
against it. `environment.json` records package versions, XLA flags, devices
and the host's processor, one file per launch (`environment-<step>.json`).
"""

from __future__ import annotations

import importlib.metadata
import hashlib
import json
import os
import platform
import sys
from typing import Any

import jax
import ml_collections

from gan_jax.registry import ConfigError

CONFIG_FILE = "config.json"
# Keys that may change between a run and its resumption: they set how long
# and how visibly a run goes, not what any step computes.
RESUME_SAFE_KEYS = frozenset({
    "num_train_steps", "log_every_steps", "eval_every_steps", "checkpoint_every_steps",
    "keep_checkpoints", "allow_config_change",
})
# Evaluation only reads the state, so its settings may change between resumes.
RESUME_SAFE_PREFIXES = ("eval.", "profile.")
# Options added after runs were already made, at the values that compute what
# those runs computed: a saved config without the key matches this value.
ABSENT_MEANS = {
    "compute_dtype": "float32",
    "num_classes": 0,
    "augment.policy": "",
    "ema.decay": 0.0,
    "ema.start_step": 0,
    "discriminator.batch_norm": False,
    # The models' default before configs named it.
    "generator.conv_transpose": "phase",
    "decoder.conv_transpose": "phase",
    "discriminator.conv": "xla",
}
_PACKAGES = ("jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "tensorflow-datasets",
             "grain", "ml-collections", "numpy", "array-record", "tensorboardX", "gan_jax")


def flatten(tree: dict, prefix: str = "") -> dict[str, Any]:
  flat = {}
  for key, value in tree.items():
    name = f"{prefix}{key}"
    if isinstance(value, dict):
      flat.update(flatten(value, name + "."))
    else:
      flat[name] = value
  return flat


def config_to_dict(config: ml_collections.ConfigDict) -> dict:
  return json.loads(config.to_json_best_effort(sort_keys=True))


def config_hash(config: ml_collections.ConfigDict) -> str:
  """SHA-256 of the resolved config's canonical JSON: names a result's setup."""
  text = json.dumps(config_to_dict(config), sort_keys=True, default=str)
  return hashlib.sha256(text.encode()).hexdigest()


def changed_keys(saved: dict, current: dict) -> list[str]:
  """Dotted keys whose values differ, ignoring the resume-safe ones."""
  old, new = flatten(saved), flatten(current)

  def value(config: dict, key: str):
    return config.get(key, ABSENT_MEANS.get(key, "<absent>"))

  keys = sorted(k for k in set(old) | set(new) if value(old, k) != value(new, k))
  return [k for k in keys
          if k not in RESUME_SAFE_KEYS and not k.startswith(RESUME_SAFE_PREFIXES)]


def check_and_save_config(config: ml_collections.ConfigDict, workdir: str, *,
                          write: bool) -> None:
  """Refuses to resume under a different config, then writes the config."""
  path = os.path.join(workdir, CONFIG_FILE)
  current = config_to_dict(config)
  if os.path.exists(path):
    with open(path) as f:
      saved = json.load(f)
    changed = changed_keys(saved, current)
    if changed and not config.allow_config_change:
      old, new = flatten(saved), flatten(current)
      lines = [f"  {k}: {old.get(k, '<absent>')!r} -> {new.get(k, '<absent>')!r}"
               for k in changed]
      raise ConfigError(
          f"{workdir} holds a run with a different config; changed keys:\n"
          + "\n".join(lines)
          + "\nUse a new --workdir, or pass --config.allow_config_change=True to "
            "resume anyway.")
  if write:
    os.makedirs(workdir, exist_ok=True)
    partial = f"{path}.{os.getpid()}.tmp"
    with open(partial, "w") as f:
      json.dump(current, f, indent=2, sort_keys=True)
    os.replace(partial, path)  # readers see the old file or the new one, never half


def load_config(workdir: str) -> ml_collections.ConfigDict:
  path = os.path.join(workdir, CONFIG_FILE)
  if not os.path.exists(path):
    raise FileNotFoundError(f"No {CONFIG_FILE} in {workdir}: is it a gan_jax workdir?")
  with open(path) as f:
    return ml_collections.ConfigDict(json.load(f))


def _cpu_model() -> str:
  try:
    with open("/proc/cpuinfo") as f:
      for line in f:
        if line.startswith("model name"):
          return line.split(":", 1)[1].strip()
  except OSError:
    pass
  return platform.processor() or platform.machine()


def environment() -> dict:
  versions = {}
  for name in _PACKAGES:
    try:
      versions[name] = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
      versions[name] = None
  return {
      "python": sys.version,
      "platform": platform.platform(),
      "cpu": _cpu_model(),
      "packages": versions,
      "xla_flags": os.environ.get("XLA_FLAGS", ""),
      "jax_backend": jax.default_backend(),
      "process_count": jax.process_count(),
      "devices": [f"{d.platform}:{d.id} {d.device_kind} (process {d.process_index})"
                  for d in jax.devices()],
      "argv": sys.argv,
  }


def save_environment(workdir: str, start_step: int) -> None:
  with open(os.path.join(workdir, f"environment-{start_step}.json"), "w") as f:
    json.dump(environment(), f, indent=2)
