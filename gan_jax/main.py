"""Entry point:

    python -m gan_jax.main --config=configs/ring8.py --workdir=DIR [--config.key=value ...]
    python -m gan_jax.main --rerun=WORKDIR --workdir=NEW    # exactly WORKDIR's config
    python -m gan_jax.main --config=configs/ring8.py --show_config

`--config` also takes a workdir's config.json; `--import=module` imports
modules of your own first (see gan_jax.plugins).

On several hosts every host runs the same command with --distributed. On TPU
pods, SLURM and Open MPI that is all: JAX detects the cluster. Elsewhere name
it: --coordinator_address=HOST:PORT (process 0's host, a free port),
--num_processes and each host's --process_id. `python -m gan_jax.launch`
rehearses such a job on one machine.
"""

from __future__ import annotations

import json
import logging as std_logging
import os
import sys
import traceback

from absl import app, flags, logging
from ml_collections import config_flags

from gan_jax import cli, compilation_cache, config_schema, multihost, plugins, provenance
from gan_jax.errors import UserError
from gan_jax.train import train_and_evaluate

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file("config", None, "Config file (configs/*.py) or a "
                                "workdir's config.json.", lock_config=True)
flags.DEFINE_string("workdir", None, "Where checkpoints, logs and samples go.")
flags.DEFINE_string("rerun", None, "A workdir whose recorded config and plugins to train "
                    "again, unchanged, in --workdir.")
flags.DEFINE_bool("show_config", False, "Print the resolved config, one key a line with "
                  "its meaning, and exit.")


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


def _end_now(error: Exception) -> None:
  """Prints the traceback, then the cause as the last line, and ends the
  process at once: after a failed checkpoint save, Orbax's background threads
  wait minutes for signals that never come and would keep it alive."""
  traceback.print_exception(error)
  print(f"gan_jax.main failed: {type(error).__name__}: {error}", file=sys.stderr, flush=True)
  sys.stdout.flush()
  os._exit(1)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  config = resolved_config(sys.argv)
  if FLAGS.show_config:
    print(config_schema.show(provenance.config_to_dict(config)))
    return
  if not FLAGS.workdir:
    raise app.UsageError("--workdir is required.")
  multihost.join_from_flags()
  compilation_cache.enable()
  # Orbax logs every save at INFO; keep absl at WARNING and our progress at INFO.
  logging.set_verbosity(logging.WARNING)
  std_logging.getLogger("gan_jax").setLevel(std_logging.INFO)
  try:
    result = train_and_evaluate(config, FLAGS.workdir)
  except UserError:
    raise  # one line and exit status 2 (gan_jax.cli)
  except Exception as error:  # noqa: BLE001 - reported, then the process ends
    _end_now(error)
  if multihost.is_first_process():
    print(json.dumps(result, indent=2))
  multihost.leave()


if __name__ == "__main__":
  multihost.define_flags()
  cli.run(main)
