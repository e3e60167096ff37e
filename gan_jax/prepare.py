"""Prepare a dataset offline into the TFDS data dir:

    python -m gan_jax.prepare --dataset=NAME [--data_dir=DIR]
"""

from __future__ import annotations

from absl import app, flags

from gan_jax.data import DATASETS, default_data_dir
from gan_jax.data import pipeline as pipeline_lib

FLAGS = flags.FLAGS
flags.DEFINE_string("dataset", None, "Dataset name.", required=True)
flags.DEFINE_string("data_dir", None, "TFDS data dir (default: $GAN_JAX_DATA_DIR or "
                    "~/tensorflow_datasets).")


def main(argv):
  del argv
  spec = DATASETS.get(FLAGS.dataset)
  data_dir = FLAGS.data_dir or default_data_dir()
  if pipeline_lib.is_prepared(spec, data_dir):
    print(f"{spec.name} is already prepared in {data_dir}.")
    return
  pipeline_lib.prepare(spec, data_dir)
  print(f"Prepared {spec.name} in {data_dir}.")


if __name__ == "__main__":
  app.run(main)
