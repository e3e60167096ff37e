"""Prepare a dataset offline into the TFDS data dir, or check and repair one:

    python -m gan_jax.prepare --dataset=NAME [--data_dir=DIR] [--manual_dir=DIR] [--force]
    python -m gan_jax.prepare --weights=inception [--data_dir=DIR]

A dataset already there is verified (files present, sizes, checksums and
example counts); a damaged one is reported, and `--force` rebuilds it.
`--manual_dir` is where datasets built from raw files find them (default for
fashion_mnist: /usr/share/datasets/fashion-mnist; mnist fetches its own).
"""

from __future__ import annotations

import os
import time

from absl import flags

from gan_jax import cli, storage
from gan_jax.errors import UserError
from gan_jax.data import DATASETS, default_data_dir
from gan_jax.data import pipeline as pipeline_lib

FLAGS = flags.FLAGS
flags.DEFINE_string("dataset", None, "Dataset name.")
flags.DEFINE_string("weights", None, "Pretrained weights to prepare instead: 'inception' "
                    "(the FID Inception-v3, see gan_jax.evaluation.inception_weights).")
flags.DEFINE_string("data_dir", None, "TFDS data dir (default: $GAN_JAX_DATA_DIR or "
                    "~/tensorflow_datasets).")
flags.DEFINE_string("manual_dir", None, "Directory holding the raw files to prepare from.")
flags.DEFINE_bool("force", False, "Delete the prepared dataset, if any, and build it again.")
flags.DEFINE_string("source", None, "The source archive to prepare from, or its directory "
                    "(cifar10: cifar-10-python.tar.gz).")


def main(argv):
  del argv
  data_dir = os.fspath(storage.resolve(FLAGS.data_dir or default_data_dir(), "data dir"))
  # Raw files are read with tarfile, gzip and TFDS's manual-dir builders.
  for name in ("manual_dir", "source"):
    if FLAGS[name].value is not None:
      storage.require_local(FLAGS[name].value, f"--{name}")
  if FLAGS.weights is not None:
    from gan_jax.evaluation import inception_weights
    return inception_weights.prepare_main(FLAGS.weights, data_dir)
  if FLAGS.dataset is None:
    raise UserError("Give --dataset=NAME or --weights=inception.")
  spec = DATASETS.get(FLAGS.dataset)
  if not FLAGS.force:
    problem = pipeline_lib.find_damage(spec, data_dir, thorough=True)
    if problem is not None:
      raise pipeline_lib.damaged_error(spec, data_dir, problem)
    if pipeline_lib.is_prepared(spec, data_dir):
      print(f"{spec.name} is already prepared in {data_dir}, and intact.")
      return
  start = time.perf_counter()
  source_dir = FLAGS.source if FLAGS.source is None or os.path.isdir(FLAGS.source) else (
      os.path.dirname(os.path.abspath(FLAGS.source)))
  pipeline_lib.prepare(spec, data_dir, FLAGS.manual_dir or source_dir, force=FLAGS.force)
  splits = spec.builder(data_dir).info.splits
  counts = ", ".join(f"{name}: {split.num_examples}" for name, split in sorted(splits.items()))
  print(f"Prepared {spec.name} in {data_dir} ({counts}) in "
        f"{time.perf_counter() - start:.0f} s.")


if __name__ == "__main__":
  cli.run(main)
