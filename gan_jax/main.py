"""Entry point:

    python -m gan_jax.main --config=configs/ring8.py --workdir=DIR [--config.key=value ...]

On a multi-host pod every host runs the same command with --distributed;
`jax.distributed.initialize()` then discovers the topology.
"""

from __future__ import annotations

import json
import logging as std_logging

import jax
from absl import app, flags, logging
from ml_collections import config_flags

from gan_jax import cli, compilation_cache
from gan_jax.train import train_and_evaluate

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file("config", None, "Config file (configs/*.py).", lock_config=True)
flags.DEFINE_string("workdir", None, "Where checkpoints, logs and samples go.", required=True)
flags.DEFINE_bool("distributed", False, "Call jax.distributed.initialize() (multi-host).")
flags.mark_flags_as_required(["config"])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  if FLAGS.distributed:
    jax.distributed.initialize()
  compilation_cache.enable()
  # Orbax logs every save at INFO; keep absl at WARNING and our progress at INFO.
  logging.set_verbosity(logging.WARNING)
  std_logging.getLogger("gan_jax").setLevel(std_logging.INFO)
  result = train_and_evaluate(FLAGS.config, FLAGS.workdir)
  if jax.process_index() == 0:
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
  cli.run(main)
