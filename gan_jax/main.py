"""Entry point:

    python -m gan_jax.main --config=configs/ring8.py --workdir=DIR [--config.key=value ...]

On several hosts every host runs the same command with --distributed. On TPU
pods, SLURM and Open MPI that is all: JAX detects the cluster. Elsewhere name
it: --coordinator_address=HOST:PORT (process 0's host, a free port),
--num_processes and each host's --process_id. `python -m gan_jax.launch`
rehearses such a job on one machine.
"""

from __future__ import annotations

import json
import logging as std_logging

from absl import app, flags, logging
from ml_collections import config_flags

from gan_jax import compilation_cache, multihost
from gan_jax.train import train_and_evaluate

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file("config", None, "Config file (configs/*.py).", lock_config=True)
flags.DEFINE_string("workdir", None, "Where checkpoints, logs and samples go.", required=True)
flags.mark_flags_as_required(["config"])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  multihost.join_from_flags()
  compilation_cache.enable()
  # Orbax logs every save at INFO; keep absl at WARNING and our progress at INFO.
  logging.set_verbosity(logging.WARNING)
  std_logging.getLogger("gan_jax").setLevel(std_logging.INFO)
  result = train_and_evaluate(FLAGS.config, FLAGS.workdir)
  if multihost.is_first_process():
    print(json.dumps(result, indent=2))
  multihost.leave()


if __name__ == "__main__":
  multihost.define_flags()
  app.run(main)
