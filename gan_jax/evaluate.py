"""The `evaluate` command: score a trained run's checkpoint.

    python -m gan_jax.evaluate --workdir=DIR --output=FILE.json [--step=N] [--distributed]

loads a checkpoint (default: the latest), draws `--num_samples` samples from a
fixed seed with EMA weights where they exist, and writes the step and every
metric that fits the dataset as JSON (`gan_jax.evaluation.evaluate`); for a
run of several seeds (config num_seeds), each seed's metrics under "seeds" and
their mean ± standard error over the seeds that did not diverge. With
--distributed (see gan_jax.main) every process samples its share of each
batch, every process gets the gathered samples and computes the metrics, and
process 0 writes them.
"""

from __future__ import annotations

import json

from absl import flags

from gan_jax import cli, multihost, storage
from gan_jax.evaluation.evaluate import evaluate_workdir

FLAGS = flags.FLAGS


def define_flags():
  flags.DEFINE_string("workdir", None, "Training workdir.", required=True)
  flags.DEFINE_string("output", None, "JSON file to write.", required=True)
  flags.DEFINE_integer("step", None, "Checkpoint step (default: latest).")
  flags.DEFINE_integer("num_samples", 2500, "Samples to draw.", lower_bound=1)
  flags.DEFINE_integer("seed", 0, "Sampling seed.")
  flags.DEFINE_bool("use_ema", True, "Sample with the generator's EMA weights where they "
                    "exist.")
  flags.DEFINE_bool("inception", True, "Also standard FID/KID on the FID Inception (image "
                    "datasets; prepare its weights first). About 0.2-0.5 s per image on a "
                    "2-core CPU, the dataset's reference features cached after the first run.")
  flags.DEFINE_integer("inception_samples", 0, "The Inception metrics on the first this many "
                       "samples (0: all of them).", lower_bound=0)


def main(argv):
  del argv
  output = storage.resolve(FLAGS.output, "--output")
  multihost.join_from_flags()
  results = evaluate_workdir(FLAGS.workdir, step=FLAGS.step, num_samples=FLAGS.num_samples,
                             seed=FLAGS.seed, use_ema=FLAGS.use_ema,
                             inception=FLAGS.inception,
                             inception_samples=FLAGS.inception_samples)
  if multihost.is_first_process():
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))
  multihost.leave()


if __name__ == "__main__":
  define_flags()
  multihost.define_flags()
  cli.run(main)
