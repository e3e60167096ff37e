"""A saved `config.json` as a config: `--config=WORKDIR/config.json` reads it
through this module (`get_config(path)`), so `--config.KEY=value` overrides
work on it as on any config file; `--rerun=WORKDIR` reads it unchanged.

Reading imports the plugins the run recorded, then fills in the keys that
older versions did not write (`gan_jax.config_schema.complete`).
"""

from __future__ import annotations

import json
import os

import ml_collections

from gan_jax import plugins
from gan_jax.config_schema import complete
from gan_jax.registry import ConfigError


def read(path: str) -> ml_collections.ConfigDict:
  if not os.path.isfile(path):
    raise ConfigError(f"No saved config {path}: is it a gan_jax workdir's config.json?")
  try:
    with open(path) as f:
      saved = json.load(f)
  except ValueError as error:
    raise ConfigError(f"{path} is not valid JSON ({error}).") from None
  plugins.import_all(saved.get("plugins", ""), origin=path)
  return ml_collections.ConfigDict(complete(saved))


def get_config(path: str) -> ml_collections.ConfigDict:
  return read(path)
