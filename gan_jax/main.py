"""Entry point:

    python -m gan_jax.main --config=configs/ring8.py --workdir=DIR [--config.key=value ...]
    python -m gan_jax.main --rerun=WORKDIR --workdir=NEW    # exactly WORKDIR's config
    python -m gan_jax.main --config=configs/ring8.py --show_config

`--config` also takes a workdir's config.json; `--import=module` imports
modules of your own first (see gan_jax.plugins).

On a multi-host pod every host runs the same command with --distributed;
`jax.distributed.initialize()` then discovers the topology.
"""

from __future__ import annotations

import json
import logging as std_logging
import sys

import jax
from absl import app, flags, logging
from ml_collections import config_flags

from gan_jax import cli, compilation_cache, config_schema, plugins, provenance
from gan_jax.train import train_and_evaluate

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file("config", None, "Config file (configs/*.py) or a "
                                "workdir's config.json.", lock_config=True)
flags.DEFINE_string("workdir", None, "Where checkpoints, logs and samples go.")
flags.DEFINE_string("rerun", None, "A workdir whose recorded config and plugins to train "
                    "again, unchanged, in --workdir.")
flags.DEFINE_bool("show_config", False, "Print the resolved config, one key a line with "
                  "its meaning, and exit.")
flags.DEFINE_bool("distributed", False, "Call jax.distributed.initialize() (multi-host).")


def resolved_config(argv: list[str]):
  """The config to run, recording every plugin imported for it."""
  if FLAGS.config is None:
    raise app.UsageError("Give --config=configs/X.py (or a config.json), or --rerun=WORKDIR.")
  if FLAGS.rerun and any(a.startswith(("--config=", "--config.")) for a in argv):
    raise app.UsageError("--rerun trains the recorded config unchanged; to change it, "
                         "use --config=WORKDIR/config.json with overrides instead.")
  config = FLAGS.config
  config.plugins = ",".join(plugins.split(
      [config.plugins, *plugins.in_argv(argv), *cli.recorded_plugins(FLAGS.workdir)]))
  return config


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  config = resolved_config(sys.argv)
  if FLAGS.show_config:
    print(config_schema.show(provenance.config_to_dict(config)))
    return
  if not FLAGS.workdir:
    raise app.UsageError("--workdir is required.")
  if FLAGS.distributed:
    jax.distributed.initialize()
  compilation_cache.enable()
  # Orbax logs every save at INFO; keep absl at WARNING and our progress at INFO.
  logging.set_verbosity(logging.WARNING)
  std_logging.getLogger("gan_jax").setLevel(std_logging.INFO)
  result = train_and_evaluate(config, FLAGS.workdir)
  if jax.process_index() == 0:
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
  cli.run(main)
