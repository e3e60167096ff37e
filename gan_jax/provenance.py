"""What a run ran with: its resolved config and its environment, in the workdir.

`config.json` is the resolved config; a restart on the same workdir compares
against it. `environment.json` records package versions, XLA flags and the
backend's choices (`gan_jax.backend`: compiler options, kernel forms),
devices and the host's processor, one file per launch (`environment-<step>.json`).
"""

from __future__ import annotations

import importlib.metadata
import hashlib
import json
import os
import platform
import sys
from typing import Any, Optional

import jax
import ml_collections
from etils import epath

from gan_jax import backend, code_version, plugins, storage
from gan_jax.config_schema import complete, effective, flatten
from gan_jax.errors import UserError
from gan_jax.registry import ConfigError

CONFIG_FILE = "config.json"
# Keys that may change between a run and its resumption: they set how long
# and how visibly a run goes, not what any step computes.
RESUME_SAFE_KEYS = frozenset({
    "num_train_steps", "log_every_steps", "eval_every_steps", "checkpoint_every_steps",
    "keep_checkpoints", "allow_config_change", "require_same_code",
    # Which modules are imported: what they register is named by other keys.
    "plugins",
})
# Evaluation only reads the state, so its settings may change between resumes.
RESUME_SAFE_PREFIXES = ("eval.", "profile.")
_PACKAGES = ("jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "tensorflow-datasets",
             "grain", "ml-collections", "numpy", "array-record", "tensorboardX", "gan_jax")


def config_to_dict(config: ml_collections.ConfigDict) -> dict:
  return json.loads(config.to_json_best_effort(sort_keys=True))


def config_hash(config: ml_collections.ConfigDict) -> str:
  """SHA-256 of the resolved config's canonical JSON: names a result's setup."""
  text = json.dumps(config_to_dict(config), sort_keys=True, default=str)
  return hashlib.sha256(text.encode()).hexdigest()


def changed_keys(saved: dict, current: dict) -> list[str]:
  """Dotted keys whose values differ as the runs use them (absent keys at
  what their absence meant, see `config_schema`), ignoring the resume-safe ones."""
  old, new = (effective(flatten(complete(c))) for c in (saved, current))
  keys = sorted(k for k in set(old) | set(new)
                if old.get(k, "<absent>") != new.get(k, "<absent>"))
  return [k for k in keys
          if k not in RESUME_SAFE_KEYS and not k.startswith(RESUME_SAFE_PREFIXES)]


def check_config(config: ml_collections.ConfigDict, workdir) -> None:
  """Refuses to resume under a different config. A `config.json` without a
  checkpoint beside it records a run that saved nothing: it does not bind."""
  path = epath.Path(workdir) / CONFIG_FILE
  if not path.exists() or not _has_checkpoints(workdir):
    return
  saved = _read_json(path)
  current = config_to_dict(config)
  changed = changed_keys(saved, current)
  if changed and not config.allow_config_change:
    old, new = (effective(flatten(complete(c))) for c in (saved, current))
    shown = ", ".join(f"{k}: {old.get(k, '<absent>')!r} -> {new.get(k, '<absent>')!r}"
                      for k in changed[:3])
    more = f" and {len(changed) - 3} more" if len(changed) > 3 else ""
    raise ConfigError(
        f"{workdir} holds a run with a different config ({shown}{more}). Use a new "
        "--workdir, or pass --config.allow_config_change=True to resume anyway.")


def _has_checkpoints(workdir) -> bool:
  directory = epath.Path(workdir) / "checkpoints"
  return directory.exists() and any(p.name.isdigit() for p in directory.iterdir())


def write_json_atomically(path, value: Any) -> None:
  """Writes `value` as JSON to a temporary file beside `path`, then renames it
  over `path`: a reader sees the old file or the new one, never half of one."""
  text = json.dumps(value, indent=2, sort_keys=True)
  storage.write_atomically(path, lambda f: f.write(text.encode()))


def save_config(config: ml_collections.ConfigDict, workdir) -> None:
  """Writes `config.json`; call it once the config is valid and, on resume,
  once the checkpoint has restored under it."""
  write_json_atomically(epath.Path(workdir) / CONFIG_FILE, config_to_dict(config))


def _read_json(path):
  try:
    return json.loads(epath.Path(path).read_text())
  except ValueError as error:
    raise UserError(f"{path} is not valid JSON ({error}); restore it or use a new "
                    "--workdir.") from None


def read_config(path) -> ml_collections.ConfigDict:
  """A saved config: its plugins imported, absent keys at what their absence
  meant (`config_schema.complete`)."""
  if not epath.Path(path).exists():
    raise UserError(f"No saved config {path}: is it a gan_jax workdir's {CONFIG_FILE}?")
  saved = _read_json(path)
  plugins.import_all(saved.get("plugins", ""), origin=str(path))
  return ml_collections.ConfigDict(complete(saved, unused=False))


def load_config(workdir) -> ml_collections.ConfigDict:
  return read_config(epath.Path(workdir) / CONFIG_FILE)


def _cpu_info_line(key: str) -> str:
  """The value of /proc/cpuinfo's first `key` line; "" where there is none."""
  try:
    with open("/proc/cpuinfo") as f:
      for line in f:
        if line.startswith(key):
          return line.split(":", 1)[1].strip()
  except OSError:
    pass
  return ""


def _cpu_model() -> str:
  return _cpu_info_line("model name") or platform.processor() or platform.machine()


def cpu_features() -> dict:
  """The CPU's model and the vector extensions that change float round-off
  (bf16 dots): what a precision result depends on."""
  flags = set(_cpu_info_line("flags").split())
  return {"model": _cpu_model(), "avx2": "avx2" in flags,
          "avx512_bf16": "avx512_bf16" in flags, "amx_bf16": "amx_bf16" in flags}


def environment(plugin_names: str = "") -> dict:
  """The launch's software, hardware and code (see `gan_jax.code_version`)."""
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
      "backend_choices": backend.record(),
      "process_count": jax.process_count(),
      "devices": [f"{d.platform}:{d.id} {d.device_kind} (process {d.process_index})"
                  for d in jax.devices()],
      "argv": sys.argv,
      "code": code_version.describe(),
      "plugins": plugins.file_hashes(plugins.split(plugin_names)),
  }


def save_environment(workdir, start_step: int, plugin_names: str = "") -> None:
  write_json_atomically(epath.Path(workdir) / f"environment-{start_step}.json",
                        environment(plugin_names))


def code_difference(workdir, plugin_names: str = "") -> Optional[str]:
  """How today's code and plugins differ from the workdir's last launch's
  (its latest `environment-<step>.json`); None when they match or when no
  launch recorded them."""
  records = sorted((int(p.name[len("environment-"):-len(".json")]), p)
                   for p in epath.Path(workdir).glob("environment-*.json")
                   if p.name[len("environment-"):-len(".json")].isdigit())
  if not records:
    return None
  recorded = _read_json(records[-1][1])
  if "code" not in recorded:
    return None
  current = {"code": code_version.describe(),
             "plugins": plugins.file_hashes(plugins.split(plugin_names))}
  return code_version.difference(recorded, current)
