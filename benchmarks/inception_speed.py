"""Speed of the FID Inception features on this machine, as a share of the
float32 matmul peak.

    python benchmarks/inception_speed.py [--batch_size=64] [--repeats=2]
        [--output=benchmarks/results/inception_speed.json]

Times `gan_jax.evaluation.inception.features` on one batch of 28x28 grey images (the
resize to 299x299 included), warm, the fastest of `--repeats`; the FLOPs per
image are XLA's count for the compiled network. The matmul peak
(benchmarks/step_suite.py) is measured just before and just after, and the
share uses the larger: on a shared CPU both drift with the load, so the
report states the load average too. Uses the prepared weights when there
are, else random ones (the speed is the same).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.step_suite import matmul_peak_flops  # noqa: E402
from gan_jax.evaluation import inception, inception_weights  # noqa: E402
from gan_jax.data import default_data_dir  # noqa: E402
from gan_jax.sharding import make_mesh  # noqa: E402


def parse_args():
  # argparse: step_suite, imported for its peak, defines absl flags of these names.
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--batch_size", type=int, default=64, help="Images per timed call.")
  parser.add_argument("--repeats", type=int, default=2, help="Timed calls (the fastest counts).")
  parser.add_argument("--output", default="benchmarks/results/inception_speed.json")
  return parser.parse_args()


def network_flops_per_image(params) -> float:
  levels = jnp.zeros((1, 28, 28, 3))
  rows = jnp.asarray(inception.tf1_bilinear_matrix(28, inception.INPUT_SIZE))
  compiled = jax.jit(inception._forward).lower(params, levels, rows, rows).compile()
  return float(compiled.cost_analysis()["flops"])


def main():
  args = parse_args()
  data_dir = default_data_dir()
  if inception_weights.is_prepared(data_dir):
    extractor = inception.load_extractor(data_dir)
  else:
    extractor = inception.InceptionExtractor(
        inception.init_params(jax.random.PRNGKey(0)), {"sha256": "random"})
  images = np.random.default_rng(0).integers(0, 256, (args.batch_size, 28, 28), np.uint8)
  run = lambda: inception.features(extractor, images, batch_size=args.batch_size)
  run()
  peak_before = matmul_peak_flops()
  times = []
  for _ in range(args.repeats):
    start = time.perf_counter()
    run()
    times.append(time.perf_counter() - start)
  peak_after = matmul_peak_flops()
  seconds_per_image = min(times) / args.batch_size
  flops = network_flops_per_image(extractor.params)
  peak = max(peak_before, peak_after)  # a peak: the drift on a shared CPU only lowers it
  report = {
      "batch_size": args.batch_size, "devices": len(make_mesh().devices.flat),
      "seconds_per_image": seconds_per_image, "gflop_per_image": flops / 1e9,
      "gflops": flops / seconds_per_image / 1e9,
      "matmul_peak_gflops_before_after": [peak_before / 1e9, peak_after / 1e9],
      "share_of_peak": flops / seconds_per_image / peak,
      "load_average": os.getloadavg(), "cpu_count": os.cpu_count(),
      "backend": jax.default_backend(), "machine": platform.processor() or platform.machine(),
      "jax": jax.__version__}
  print(json.dumps(report, indent=2))
  os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
  with open(args.output, "w") as f:
    json.dump(report, f, indent=2)
    f.write("\n")


if __name__ == "__main__":
  main()
