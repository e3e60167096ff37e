"""A saved `config.json` as a config file: `--config=WORKDIR/config.json` reads
it through `get_config(path)` here, so `--config.KEY=value` overrides work on
it as on any config; `--rerun=WORKDIR` reads it unchanged. Reading imports
the plugins the run recorded and fills in keys older versions did not write
(`gan_jax.provenance.read_config`).
"""

from __future__ import annotations

import ml_collections

from gan_jax.provenance import read_config


def get_config(path: str) -> ml_collections.ConfigDict:
  return read_config(path)
