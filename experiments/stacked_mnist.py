"""Experiment (c): Stacked MNIST modes and KL, DCGAN with and without PacGAN packing.

    python -m gan_jax.prepare --dataset=stacked_mnist
    python -m experiments.stacked_mnist [--variants=dcgan,pacdcgan2] [--parallel=2]
    python -m experiments.stacked_mnist --variants=pacdcgan2_45k,pacdcgan2_b128
    python -m experiments.stacked_mnist --variants=pacdcgan2_g64,pacdcgan2_joint,pacdcgan2_g64_joint
    python -m experiments.stacked_mnist --variants=pacdcgan2_g64,pacdcgan4_g64
    python -m experiments.stacked_mnist --variants=pacdcgan2_g64_d48,pacdcgan2_g64_d48_10k
    python -m experiments.stacked_mnist --variants=pacdcgan2_g64_d48_ema9999
    python -m experiments.stacked_mnist --variants=pacdcgan2_g64_d64,pacdcgan2_g64_d48_fastd
    python -m experiments.stacked_mnist --variants=pacdcgan2_g64_d48_lr4e-4,pacdcgan2_g96_d48
    python -m experiments.stacked_mnist --variants=pacdcgan2_g64_d48_lr4e-4_const,pacdcgan2_g64_d48_lr8e-4
    python -m experiments.stacked_mnist --variants=pacdcgan2_g64_d48_lr4e-4_const --seed=1
    python -m experiments.stacked_mnist --variants=pacdcgan2_g64_d48_lr8e-4_const

Every run uses configs/dcgan_stacked_mnist.py (20,000 steps); the variants
set `pack_size` and both networks' widths (NARROW_G, NARROW_D: dcgan_mnist's;
the config's default is DEFAULT_VARIANT, the best found), both learning
rates and their schedule (DECAY or CONSTANT), and some the steps, batch
size, EMA decay or D's joint batch. Each run's last evaluation
classifies each channel of 26,000 EMA samples with the committed MNIST
classifier and counts the modes (of 1000) and KL(generated || uniform).
Results go to experiments/results/stacked_mnist.json, where rows of runs not
repeated this time (other variants, other budgets) are kept; the script
prints the Markdown table next to the published figures it compares with.
"""

from __future__ import annotations

import json
import os
import sys

from absl import app, flags

from configs import dcgan_stacked_mnist
from experiments import report, summary
from experiments.sweep import can_pin_cpus, run_variants

CONFIG = "configs/dcgan_stacked_mnist.py"
# dcgan_mnist's generator width, the config's default before the wide G won.
NARROW_G = "--config.generator.base_features=32"
WIDE_G = "--config.generator.base_features=64"
# D's width before the wider D won, and the wider D: every variant names D's width.
NARROW_D = "--config.discriminator.base_features=32"
WIDE_D = "--config.discriminator.base_features=48"


def both_players(field: str, value: str) -> list[str]:
  """The overrides that set `field` of both players' optimizers to `value`."""
  return [f"--config.optimizer.{player}.{field}={value}"
          for player in ("generator", "discriminator")]


# The learning rates (both players) before doubling them won: every variant names them.
LR_2E4 = both_players("learning_rate", "2e-4")
# The schedules: decayed linearly to 0 (the default before holding the rate
# won) and held. Every variant names one.
DECAY = both_players("schedule", "linear_decay")
CONSTANT = both_players("schedule", "constant")
# name -> (overrides, training steps; None: the config's).
VARIANTS = {
    "DCGAN": ([*DECAY, *LR_2E4, NARROW_D, "--config.pack_size=1", NARROW_G], None),
    "PacDCGAN2": ([*DECAY, *LR_2E4, NARROW_D, "--config.pack_size=2", NARROW_G], None),
    "PacDCGAN4": ([*DECAY, *LR_2E4, NARROW_D, "--config.pack_size=4", NARROW_G], None),
    # The default for 2.25x the steps, the decay stretched to match.
    "PacDCGAN2_45k": ([*DECAY, *LR_2E4, NARROW_D, "--config.pack_size=2", NARROW_G,
                       "--config.eval_every_steps=15000",
                       *both_players("decay_steps", "45000")], 45_000),
    # Twice the batch (64 packs of 2 per D batch) for 1.5x the default's steps.
    "PacDCGAN2_b128": ([*DECAY, *LR_2E4, NARROW_D, "--config.pack_size=2", NARROW_G,
                        "--config.batch_size=128",
                        "--config.eval_every_steps=10000",
                        *both_players("decay_steps", "30000")], 30_000),
    # Twice G's width (7x7x128 -> 14x14x64 -> 28x28x3): ~1.8x the step time.
    "PacDCGAN2_G64": ([*DECAY, *LR_2E4, NARROW_D, "--config.pack_size=2", WIDE_G], None),
    # Packs of 4 (16 packs per D batch) with the wide G.
    "PacDCGAN4_G64": ([*DECAY, *LR_2E4, NARROW_D, "--config.pack_size=4", WIDE_G], None),
    # A wider D (48 -> 96 features) against the wide G.
    "PacDCGAN2_G64_D48": ([*DECAY, *LR_2E4, "--config.pack_size=2", WIDE_G, WIDE_D], None),
    # The wider D for half the steps, the decay shortened to match.
    "PacDCGAN2_G64_D48_10k": ([*DECAY, *LR_2E4, "--config.pack_size=2", WIDE_G, WIDE_D,
                               *both_players("decay_steps", "10000")], 10_000),
    # The wider D with a ten times longer generator EMA (decay 0.9999).
    "PacDCGAN2_G64_D48_EMA9999": ([*DECAY, *LR_2E4, "--config.pack_size=2", WIDE_G, WIDE_D,
                                   "--config.ema.decay=0.9999"], None),
    # The wider D with twice G's learning rate (D 4e-4, G 2e-4; TTUR, Heusel et al. 2017).
    "PacDCGAN2_G64_D48_fastD": ([*DECAY, LR_2E4[0], "--config.pack_size=2", WIDE_G, WIDE_D,
                                "--config.optimizer.discriminator.learning_rate=4e-4"], None),
    # G 1.5 times wider again (7x7x192 -> 14x14x96 -> 28x28x3) against the wider D.
    "PacDCGAN2_G96_D48": ([*DECAY, *LR_2E4, "--config.pack_size=2",
                           "--config.generator.base_features=96", WIDE_D], None),
    # The wider D with both learning rates doubled (4e-4), still decayed to 0.
    "PacDCGAN2_G64_D48_lr4e-4": ([*DECAY, "--config.pack_size=2", WIDE_G, WIDE_D,
                                  *both_players("learning_rate", "4e-4")], None),
    # The lr4e-4 run with both rates held at 4e-4 (no decay): the default.
    "PacDCGAN2_G64_D48_lr4e-4_const": ([*CONSTANT, "--config.pack_size=2", WIDE_G, WIDE_D,
                                        *both_players("learning_rate", "4e-4")], None),
    # The lr4e-4 run with both learning rates doubled again (8e-4), decayed to 0.
    "PacDCGAN2_G64_D48_lr8e-4": ([*DECAY, "--config.pack_size=2", WIDE_G, WIDE_D,
                                  *both_players("learning_rate", "8e-4")], None),
    # Both learning rates held at 8e-4 (no decay).
    "PacDCGAN2_G64_D48_lr8e-4_const": ([*CONSTANT, "--config.pack_size=2", WIDE_G, WIDE_D,
                                        *both_players("learning_rate", "8e-4")], None),
    # D as wide as G (64 -> 128 features).
    "PacDCGAN2_G64_D64": ([*DECAY, *LR_2E4, "--config.pack_size=2", WIDE_G,
                           "--config.discriminator.base_features=64"], None),
    # The wide G with the hinge loss instead of the non-saturating one.
    "PacDCGAN2_G64_hinge": ([*DECAY, *LR_2E4, NARROW_D, "--config.pack_size=2", WIDE_G,
                             "--config.loss.name=hinge"], None),
    # The same with D's learning rate halved (G 2e-4, D 1e-4).
    "PacDCGAN2_G64_slowD": ([*DECAY, *LR_2E4, NARROW_D, "--config.pack_size=2", WIDE_G,
                             "--config.optimizer.discriminator.learning_rate=1e-4"], None),
    # D's batch norm over real and fake together (config.joint_discriminator_batch).
    "PacDCGAN2_joint": ([*DECAY, *LR_2E4, NARROW_D, "--config.pack_size=2", NARROW_G,
                         "--config.joint_discriminator_batch=True"],
                        None),
    "PacDCGAN2_G64_joint": ([*DECAY, *LR_2E4, NARROW_D, "--config.pack_size=2", WIDE_G,
                             "--config.joint_discriminator_batch=True"], None),
}
# The variant configs/dcgan_stacked_mnist.py's defaults equal (tests check it).
DEFAULT_VARIANT = report.STACKED_MNIST_DEFAULT
FLAGS = flags.FLAGS


def define_flags():
  """Flags for the command line only, so that tests can import VARIANTS."""
  flags.DEFINE_list("variants", ["dcgan", "pacdcgan2"],
                    f"Variants to run, of {', '.join(name.lower() for name in VARIANTS)}.")
  flags.DEFINE_integer("parallel", 2, "Runs at once.")
  flags.DEFINE_integer("seed", 0, "Training seed.")
  flags.DEFINE_string("workdir_root", "runs/stacked_mnist", "Where the runs go.")
  flags.DEFINE_string("output", "experiments/results/stacked_mnist.json", "Results JSON.")


def run_name(variant: str, steps: int, seed: int) -> str:
  return f"{variant.lower()}_s{seed}_{steps // 1000}k"


def main(argv):
  del argv
  by_name = {name.lower(): name for name in VARIANTS}
  unknown = sorted(set(FLAGS.variants) - set(by_name))
  if unknown:
    raise app.UsageError(f"unknown variants {unknown}; valid: {sorted(by_name)}")
  default_steps = dcgan_stacked_mnist.get_config().num_train_steps
  chosen, overrides, results = {}, {}, {}
  for short_name in FLAGS.variants:
    variant = by_name[short_name]
    variant_overrides, steps = VARIANTS[variant]
    steps = steps or default_steps
    name = run_name(variant, steps, FLAGS.seed)
    chosen[name] = variant
    overrides[name] = (steps, [*variant_overrides, f"--config.seed={FLAGS.seed}"])
  for steps in sorted({steps for steps, _ in overrides.values()}):
    group = {name: args for name, (n, args) in overrides.items() if n == steps}
    results.update(run_variants(CONFIG, group, workdir_root=FLAGS.workdir_root,
                                parallel=FLAGS.parallel,
                                pin_cpus=can_pin_cpus(FLAGS.parallel), num_train_steps=steps))
  previous = {}
  if os.path.exists(FLAGS.output):
    with open(FLAGS.output) as f:
      previous = json.load(f)
  runs, rows = previous.get("runs", {}), previous.get("table", {})
  unfinished = []
  for name, variant in chosen.items():
    evaluation = results[name]["eval"] or {}
    if evaluation.get("step") != overrides[name][0]:
      unfinished.append(f"{name} (last evaluation at step {evaluation.get('step')})")
      continue
    row = {key.removeprefix("eval/"): value for key, value in evaluation.items()}
    row.update(variant=variant, seed=FLAGS.seed, step=evaluation.get("step"),
               seconds=results[name]["seconds"], overrides=overrides[name][1])
    runs[name], rows[name] = results[name], row
  record = {"config": CONFIG, "runs": runs, "table": rows}
  summary.write_json(FLAGS.output, record)
  print(report.stacked_mnist_table(record))
  if unfinished:
    sys.exit("not recorded, stopped before their last step: " + "; ".join(unfinished))


if __name__ == "__main__":
  define_flags()
  app.run(main)
