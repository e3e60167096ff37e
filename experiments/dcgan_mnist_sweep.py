"""The searches behind configs/dcgan_mnist.py's defaults.

    python -m experiments.dcgan_mnist_sweep --sweep=first --parallel=8
    python -m experiments.dcgan_mnist_sweep [--sweep=from_default] [--parallel=N] [--only=a,b]

Trains each variant of the MNIST DCGAN and ranks them by the final
classifier-FID (2,500 EMA samples against the MNIST test set).

`first` is the sweep that chose today's defaults (results in
experiments/results/dcgan_mnist_sweep_h200.json, run on an H200): its
variants start from the config as it was then (FIRST_BASE: no batch norm in
D, constant learning rates, 3,000 steps), so each row's overrides are
relative to that. It found batch norm in D (`d_batchnorm`) and wider networks
best; the config took batch norm in D and a linear decay over 6,000 steps.
`from_default` changes one or two things at a time from the config as
committed (written to experiments/results/dcgan_mnist_sweep.json; not run yet).
"""

from __future__ import annotations

import time

from absl import app, flags

from experiments import report, summary
from experiments.sweep import run_variants

CONFIG = "configs/dcgan_mnist.py"
COMMON = ["--config.eval.num_samples=2500", "--config.eval_every_steps=1000"]


def lrs(g, d):
  return [f"--config.optimizer.generator.learning_rate={g}",
          f"--config.optimizer.discriminator.learning_rate={d}"]


def widths(g, d):
  return [f"--config.generator.base_features={g}",
          f"--config.discriminator.base_features={d}"]


# The config before the first sweep, as overrides of today's.
FIRST_BASE = ["--config.discriminator.batch_norm=False",
              "--config.optimizer.generator.schedule=constant",
              "--config.optimizer.discriminator.schedule=constant"]
FIRST = {
    "committed": [],
    "d_batchnorm": ["--config.discriminator.batch_norm=True"],
    "d_batchnorm_width48": ["--config.discriminator.batch_norm=True", *widths(48, 48)],
    "d_width64": widths(32, 64),
    "hinge": ["--config.loss.name=hinge"],
    "least_squares": ["--config.loss.name=least_squares"],
    "width48": widths(48, 48),
    "width64": widths(64, 64),
}
FROM_DEFAULT = {
    "committed": [],
    "d_width64": widths(32, 64),
    "width64": widths(64, 64),
    "width48": widths(48, 48),
    "no_d_batchnorm": ["--config.discriminator.batch_norm=False"],
    "constant_lr": ["--config.optimizer.generator.schedule=constant",
                    "--config.optimizer.discriminator.schedule=constant"],
    "hinge": ["--config.loss.name=hinge"],
    "least_squares": ["--config.loss.name=least_squares"],
    "sn_hinge": ["--config.loss.name=hinge", "--config.discriminator.spectral_norm=True"],
    "lr1e-4": lrs(1e-4, 1e-4),
    "ttur_g1e-4_d4e-4": lrs(1e-4, 4e-4),
    "lr4e-4": lrs(4e-4, 4e-4),
    "batch128": ["--config.batch_size=128"],
    "kernel5": ["--config.generator.kernel_size=5", "--config.discriminator.kernel_size=5"],
    "no_ema": ["--config.ema.decay=0.0"],
    "r1_0.5": ["--config.regularizers.r1.weight=0.5"],
}
# name -> (overrides every variant gets, variants, training steps (None: the config's), output)
SWEEPS = {
    "first": (FIRST_BASE, FIRST, 3000, "experiments/results/dcgan_mnist_sweep_h200.json"),
    "from_default": ([], FROM_DEFAULT, None, "experiments/results/dcgan_mnist_sweep.json"),
}

FLAGS = flags.FLAGS


def define_flags():
  """Flags for the command line only, so that tests can import this module."""
  flags.DEFINE_enum("sweep", "from_default", list(SWEEPS), "Which sweep to run.")
  flags.DEFINE_integer("parallel", 1, "Runs at once.")
  flags.DEFINE_list("only", None, "Variants to run (default: all of the sweep's).")
  flags.DEFINE_string("workdir_root", None,
                      "Where the workdirs go (default runs/dcgan_mnist_<sweep>).")
  flags.DEFINE_string("output", None, "Results JSON (default: the sweep's file).")


def main(argv):
  del argv
  base, variants, num_train_steps, output = SWEEPS[FLAGS.sweep]
  names = FLAGS.only or list(variants)
  unknown = sorted(set(names) - set(variants))
  if unknown:
    raise app.UsageError(f"Unknown variant(s) {unknown}; valid: {', '.join(variants)}.")
  start = time.time()
  common = COMMON + base
  results = run_variants(CONFIG, {n: common + variants[n] for n in names},
                         workdir_root=FLAGS.workdir_root or f"runs/dcgan_mnist_{FLAGS.sweep}",
                         parallel=FLAGS.parallel, num_train_steps=num_train_steps)
  record = {"config": CONFIG, "common_overrides": common,
            "variants": {n: {"overrides": variants[n], **results[n]} for n in names},
            "wall_seconds": time.time() - start}
  summary.write_json(FLAGS.output or output, record)
  print(report.dcgan_sweep_table(record))


if __name__ == "__main__":
  define_flags()
  app.run(main)
