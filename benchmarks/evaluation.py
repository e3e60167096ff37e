"""How long evaluating a trained model takes, phase by phase.

    python benchmarks/evaluation.py [--workdir=runs/dcgan_mnist] [--num_samples=10000]
        [--output=benchmarks/results/evaluation.json]

Runs `gan_jax.evaluation.evaluate.evaluate_workdir` end to end (restoring the checkpoint,
sampling, classifier features of the samples and of the real images, every
metric and the real-vs-real floor) in a fresh process state, then times its
phases again on their own, warm: sampling, feature extraction of the
samples, and the feature metrics. The README's main job must have run first
(`runs/dcgan_mnist`); any finished image run works.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time

import jax
from absl import app, flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from gan_jax.evaluation import classifier as classifier_lib  # noqa: E402
from gan_jax.evaluation import evaluate, feature_metrics, image_evaluation  # noqa: E402
from gan_jax.run import data_dir_for, resolved_dataset, restore_for_inference  # noqa: E402
from gan_jax.sharding import make_mesh  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", "runs/dcgan_mnist", "A finished image run.")
flags.DEFINE_integer("num_samples", 10_000, "Samples to evaluate.")
flags.DEFINE_string("output", "benchmarks/results/evaluation.json", "Results JSON.")


def timed(fn):
  start = time.perf_counter()
  out = fn()
  return out, time.perf_counter() - start


def main(argv):
  del argv
  results, end_to_end = timed(lambda: evaluate.evaluate_workdir(
      FLAGS.workdir, num_samples=FLAGS.num_samples, inception=False))  # classifier metrics only
  config, family, state = restore_for_inference(FLAGS.workdir)
  spec = resolved_dataset(config)
  mesh = make_mesh()
  sampler = evaluate.make_sampler(family, mesh)
  samples, sampling = timed(lambda: evaluate.generate(family, state, FLAGS.num_samples, 0,
                                                      sampler, mesh=mesh))
  reference = image_evaluation.reference_features(spec.name, data_dir_for(config),
                                                  FLAGS.num_samples)
  (features, _), extraction = timed(lambda: classifier_lib.features_and_probabilities(
      reference.classifier, samples, value_range=spec.value_range))
  _, scoring = timed(lambda: feature_metrics.all_feature_metrics(
      reference.test_features, features, seed=0,
      kid_subset_size=min(1000, FLAGS.num_samples)))
  report = {
      "workdir": FLAGS.workdir, "step": results["step"], "num_samples": FLAGS.num_samples,
      "devices": [str(d) for d in jax.devices()], "cpu_count": os.cpu_count(),
      "machine": platform.machine(), "jax": jax.__version__,
      "end_to_end_seconds": end_to_end,
      "warm_phases_seconds": {"sampling": sampling, "sample_features": extraction,
                              "feature_metrics": scoring},
      "fid": results.get("fid"),
  }
  os.makedirs(os.path.dirname(os.path.abspath(FLAGS.output)), exist_ok=True)
  with open(FLAGS.output, "w") as f:
    json.dump(report, f, indent=2)
  print(json.dumps(report, indent=2))


if __name__ == "__main__":
  app.run(main)
