"""`python -m gan_jax.fid` at full size: 10,000 MNIST test images against
10,000 MNIST training images, timed end to end, then again with the test
split's statistics cached.

    python benchmarks/inception_fid.py [--count=10000]
        [--output=benchmarks/results/inception_fid_mnist.json]

Needs MNIST and the Inception weights prepared (`python -m gan_jax.prepare
--dataset=mnist --weights=inception`). The first command computes both
sides' features: the training images come from a scratch `.npy` of the first
`--count` training digits (an image array, as a user would pass), the test
split by name (`mnist:test`), whose cached statistics are removed first so
that the run is cold. The second, identical command finds the test split's
statistics in the cache and computes only the training side. Each command is
a fresh process timed from launch to exit (start-up, weight loading and
compilation included); the load average is sampled every 10 s, since the
machine is shared. The share of the float32 matmul peak uses XLA's FLOP count
of the network and the best of two peak measurements taken just before.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)

from benchmarks.inception_speed import network_flops_per_image  # noqa: E402
from benchmarks.step_suite import matmul_peak_flops  # noqa: E402
from gan_jax.data import DATASETS, default_data_dir  # noqa: E402
from gan_jax.data import pipeline as pipeline_lib  # noqa: E402
from gan_jax.evaluation import inception, inception_metrics  # noqa: E402


class LoadSampler:
  """The 1-minute load average every `period` seconds while a command runs."""

  def __init__(self, period: float = 10.0):
    self.samples: list[float] = []
    self._stop = threading.Event()
    self._thread = threading.Thread(target=self._sample, args=(period,), daemon=True)

  def _sample(self, period):
    while not self._stop.wait(period):
      self.samples.append(round(os.getloadavg()[0], 2))

  def __enter__(self):
    self._thread.start()
    return self

  def __exit__(self, *exc):
    self._stop.set()
    self._thread.join()


def timed_fid(args: list[str], output: str) -> dict:
  command = [sys.executable, "-m", "gan_jax.fid", *args, f"--output={output}"]
  with LoadSampler() as load:
    start = time.perf_counter()
    result = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - start
  if result.returncode:
    sys.exit(f"{' '.join(command)} failed:\n{result.stderr[-3000:]}")
  with open(output) as f:
    metrics = json.load(f)
  return {"command": "python -m gan_jax.fid " + " ".join(args), "seconds": seconds,
          "load_average_samples": load.samples, "result": metrics}


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--count", type=int, default=10_000, help="Training images.")
  parser.add_argument("--output", default="benchmarks/results/inception_fid_mnist.json")
  args = parser.parse_args()
  data_dir = default_data_dir()
  extractor = inception.load_extractor(data_dir)
  peaks = [matmul_peak_flops() for _ in range(2)]
  flops_per_image = network_flops_per_image(extractor.params)
  del extractor

  scratch = tempfile.mkdtemp(prefix="inception_fid_")
  train_images = os.path.join(scratch, f"mnist_train_first{args.count}.npy")
  spec = DATASETS.get("mnist")
  np.save(train_images, pipeline_lib.load_split(spec, "train", data_dir)["image"][:args.count])
  for cached in glob.glob(os.path.join(data_dir, inception_metrics.STATS_SUBDIR, "mnist-test-*")):
    os.remove(cached)

  fid_args = ["mnist:test", train_images]
  cold = timed_fid(fid_args, os.path.join(scratch, "cold.json"))
  cached = timed_fid(fid_args, os.path.join(scratch, "cached.json"))
  seconds_per_image = cached["seconds"] / args.count  # start-up included: an upper bound
  peak = max(peaks)
  report = {
      "inputs": f"mnist:test (10,000 images) against the first {args.count} MNIST training "
                "images (uint8 .npy)",
      "cold": cold, "cached_test_statistics": cached,
      "seconds_per_image_cached_run": seconds_per_image,
      "gflop_per_image": flops_per_image / 1e9,
      "matmul_peak_gflops": [p / 1e9 for p in peaks],
      "share_of_peak_cached_run": flops_per_image / seconds_per_image / peak,
      "cpu_count": os.cpu_count(), "machine": platform.processor() or platform.machine(),
      "platform": platform.platform()}
  print(json.dumps({k: v for k, v in report.items() if k not in ("cold", "cached_test_statistics")},
                   indent=2))
  os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
  with open(args.output, "w") as f:
    json.dump(report, f, indent=2)
    f.write("\n")


if __name__ == "__main__":
  main()
