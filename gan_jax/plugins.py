"""Plugins: your own modules that register losses, regularisers, models or
families, named with `--import=module[,module]` (repeatable) on every entry
point.

They are imported before the config is read, so that the config's entries
for what they register exist; `config.plugins` records them, and resuming,
evaluating, sampling or re-running a workdir imports them again. A module is
found like any import: from the directory the command runs in, or through
PYTHONPATH.
"""

from __future__ import annotations

import hashlib
import importlib
import sys
from typing import Iterable

from gan_jax.registry import ConfigError

FLAG = "import"


def split(value: str | Iterable[str]) -> list[str]:
  """Module names from `a,b` strings (or several), in order, without repeats."""
  values = [value] if isinstance(value, str) else list(value)
  names = []
  for item in values:
    for name in str(item).split(","):
      if name.strip() and name.strip() not in names:
        names.append(name.strip())
  return names


def in_argv(argv: list[str]) -> list[str]:
  """The modules `--import` names in a command line."""
  values = []
  for i, arg in enumerate(argv):
    if arg.startswith(f"--{FLAG}="):
      values.append(arg.split("=", 1)[1])
    elif arg == f"--{FLAG}" and i + 1 < len(argv):
      values.append(argv[i + 1])
  return split(values)


def import_all(names: Iterable[str], origin: str = "--import") -> None:
  """Imports each module; a missing or broken one is a one-line user error."""
  if "" not in sys.path:
    sys.path.insert(0, "")  # the working directory, as `python -m` has it
  for name in split(names):
    try:
      importlib.import_module(name)
    except Exception as error:  # a plugin's own failure, reported as the user's
      raise ConfigError(
          f"Plugin module '{name}' (from {origin}) cannot be imported: "
          f"{type(error).__name__}: {error}. Run from the directory that holds it, "
          "or add that directory to PYTHONPATH.") from error


def file_hashes(names: Iterable[str]) -> dict[str, dict]:
  """Each imported plugin's source file and its SHA-256."""
  recorded = {}
  for name in split(names):
    path = getattr(sys.modules.get(name), "__file__", None)
    digest = None
    if path:
      with open(path, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    recorded[name] = {"file": path, "sha256": digest}
  return recorded
