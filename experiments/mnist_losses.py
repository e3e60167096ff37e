"""Experiment (b): DCGAN on MNIST under four adversarial losses, three seeds each.

    python -m experiments.mnist_losses [--parallel=2] [--workdir_root=runs/mnist_losses]

Every run is the classic DCGAN recipe (configs/dcgan_mnist_classic.py, the
main job's until issue #24: 6000 steps, batch 64, Adam(2e-4, 0.5) decayed
linearly, batch norm in D) with only the loss changed, and for
WGAN-GP also D's batch norm removed (a gradient penalty needs a D whose output
for one example does not depend on the rest of the batch). Each run is scored
once, at its last step, on 10,000 EMA samples against the 10,000 MNIST test
images (classifier features; `gan_jax.evaluation.image_evaluation`). Writes
experiments/results/mnist_losses.json and prints the Markdown table
(`experiments.report`): mean ± standard error over the seeds, and the
real-vs-real floor.

Each loss is one job of `--num_seeds` seeds (config num_seeds,
`gan_jax.seeds`); jobs go `--parallel` at a time, each pinned to one CPU core
when there are enough cores; finished jobs are not repeated. Each seed's
evaluation is recorded under its own run name (`variant_name`), with its
job's wall-clock (`job_seconds`, start-up, compilation and evaluation
included) and that over its seeds (`seconds`); a seed that diverged (frozen
before the last step) has no evaluation there, so the command names it and
records nothing.
"""

from __future__ import annotations

import sys

from absl import app, flags

from experiments import report, summary
from experiments.sweep import can_pin_cpus, run_variants, seed_evaluations

FLAGS = flags.FLAGS

CONFIG = "configs/dcgan_mnist_classic.py"
LOSSES = {
    "non-saturating": ["--config.loss.name=non_saturating"],
    "hinge": ["--config.loss.name=hinge"],
    "least squares": ["--config.loss.name=least_squares"],
    "WGAN-GP (λ=10, no BN in D)": ["--config.loss.name=wasserstein",
                                   "--config.regularizers.gradient_penalty.weight=10",
                                   "--config.discriminator.batch_norm=False"],
}
# One evaluation, at the end, on 10k samples.
NUM_TRAIN_STEPS = 6000
NUM_SAMPLES = 10_000


def variant_name(loss: str, seed: int) -> str:
  return f"{loss.split(' ')[0].lower()}_s{seed}"


def define_flags():
  """Flags for the command line only, so that tests can import this module."""
  flags.DEFINE_integer("parallel", 2, "Jobs at once.")
  flags.DEFINE_integer("num_seeds", 3, "Seeds per loss (0, 1, ...).")
  flags.DEFINE_integer("num_train_steps", NUM_TRAIN_STEPS, "Steps per run (a smaller "
                       "number only to try the command).")
  flags.DEFINE_integer("num_samples", NUM_SAMPLES, "Samples per evaluation.")
  flags.DEFINE_string("workdir_root", "runs/mnist_losses", "Where the runs go.")
  flags.DEFINE_string("output", "experiments/results/mnist_losses.json", "Results JSON.")


def job_name(loss: str) -> str:
  return variant_name(loss, 0).rsplit("_s", 1)[0]


def per_seed_runs(jobs: dict[str, dict], num_seeds: int) -> dict[str, dict]:
  """Each job's result split into one run per seed, named `variant_name`."""
  runs = {}
  for loss in LOSSES:
    job = jobs[job_name(loss)]
    evaluations = seed_evaluations(job["eval"], num_seeds)
    for seed, evaluation in enumerate(evaluations):
      runs[variant_name(loss, seed)] = {**job, "eval": evaluation,
                                        "seconds": job["seconds"] / num_seeds,
                                        "job_seconds": job["seconds"]}
  return runs


def main(argv):
  del argv
  num_seeds, steps = FLAGS.num_seeds, FLAGS.num_train_steps
  evaluation = [f"--config.eval_every_steps={steps}",
                f"--config.eval.num_samples={FLAGS.num_samples}"]
  jobs = {job_name(loss): [*overrides, "--config.seed=0", f"--config.num_seeds={num_seeds}",
                           *evaluation]
          for loss, overrides in LOSSES.items()}
  results = per_seed_runs(run_variants(CONFIG, jobs, workdir_root=FLAGS.workdir_root,
                                       parallel=FLAGS.parallel, num_train_steps=steps,
                                       pin_cpus=can_pin_cpus(FLAGS.parallel)), num_seeds)
  unfinished = sorted(name for name, run in results.items()
                      if (run["eval"] or {}).get("step") != steps)
  if unfinished:
    sys.exit(f"not recorded: {', '.join(unfinished)} stopped before step {steps}; "
             "run the command again to finish them")
  record = {"config": CONFIG, "num_train_steps": steps, "jobs": jobs,
            "runs": results, "parallel": FLAGS.parallel, "machine": summary.machine()}
  summary.write_json(FLAGS.output, record)
  print(report.mnist_losses_table(record))


if __name__ == "__main__":
  define_flags()
  app.run(main)
