"""The search for a better configs/dcgan_mnist.py recipe (issue #24: an
unconditional MNIST DCGAN that draws every digit, evenly, in 10 CPU minutes).

    python -m experiments.dcgan_mnist_sweep --stage=screen [--only=a,b]
    python -m experiments.dcgan_mnist_sweep --stage=confirm [--seeds=0,1,2]

`screen` trains each variant for 3,000 steps and scores 2,000 EMA samples
once, at the end; `confirm` trains the candidate (CANDIDATE, the best
screened variant, at 20,000 steps) and the config's recipe at its 6,000 steps,
one run per seed, and scores 10,000 samples. The candidate becomes the
config's default only once its confirmed figures are better. Both run two processes at once, each pinned to a core of its own,
and write experiments/results/dcgan_mnist_sweep.json: per run the variant,
seed, steps, minutes of training up to the last evaluation (compilation and
earlier evaluations included; on a shared machine rank by steps), the
median training rate with the load average at its end, FID, precision, class
KL, the smallest and largest digit share and the command that trained it.

Every variant starts from OLD, the overrides that pin the recipe of the
config before this sweep (batch norm in D, non-saturating loss, Adam 2e-4
decayed linearly to 0 over 6,000 steps, batch 64, widths 32, EMA 0.999 from
step 500), so the rows keep their meaning whatever the default becomes.
"""

from __future__ import annotations

import json
import os
import sys
import time

from absl import app, flags

from experiments import summary
from experiments.fid_curve import fid_against_minutes
from experiments.sweep import can_pin_cpus, run_variants

CONFIG = "configs/dcgan_mnist.py"
OUTPUT = "experiments/results/dcgan_mnist_sweep.json"
G, D = "--config.optimizer.generator", "--config.optimizer.discriminator"


def both(option, value):
  return [f"{G}.{option}={value}", f"{D}.{option}={value}"]


def widths(g, d):
  return [f"--config.generator.base_features={g}", f"--config.discriminator.base_features={d}"]


OLD = [*widths(32, 32), "--config.discriminator.batch_norm=True",
       "--config.discriminator.spectral_norm=False", "--config.discriminator.minibatch_stddev=0",
       "--config.loss.name=non_saturating", "--config.pack_size=1", "--config.batch_size=64",
       "--config.regularizers.r1.weight=0.0", *both("learning_rate", 2e-4), *both("b1", 0.5),
       *both("schedule", "linear_decay"), *both("decay_steps", 0),
       "--config.ema.decay=0.999", "--config.ema.start_step=500"]
CONSTANT = both("schedule", "constant")
SN_HINGE = ["--config.discriminator.batch_norm=False", "--config.discriminator.spectral_norm=True",
            "--config.loss.name=hinge"]
MBSTD = ["--config.discriminator.minibatch_stddev=4"]
# Screened (results/dcgan_mnist_sweep.json).
SCREEN = {
    "old": [],
    "mbstd4": MBSTD,
    "sn_hinge_mbstd4": SN_HINGE + MBSTD,
    "sn_hinge_constant": SN_HINGE + CONSTANT,
    "sn_hinge_mbstd4_constant": SN_HINGE + MBSTD + CONSTANT,
    "sn_hinge_mbstd4_constant_lr4e-4": SN_HINGE + MBSTD + CONSTANT + both("learning_rate", 4e-4),
    "sn_hinge_mbstd4_constant_pack2": SN_HINGE + MBSTD + CONSTANT + ["--config.pack_size=2"],
}
# Levers not screened yet (the shared CPU ran about 4 steps/s per run):
# `--only` runs them too.
UNTRIED = {
    "constant_lr": CONSTANT,
    "pack2": ["--config.pack_size=2"],
    "joint_d_batch": ["--config.joint_discriminator_batch=True"],
    "no_bn_r1_mbstd4_constant": ["--config.discriminator.batch_norm=False",
                                 "--config.regularizers.r1.weight=1.0", *MBSTD, *CONSTANT],
    "sn_hinge_mbstd4_constant_ttur": SN_HINGE + MBSTD + CONSTANT + [
        f"{G}.learning_rate=1e-4", f"{D}.learning_rate=4e-4"],
    "sn_hinge_mbstd4_constant_g64_d48": SN_HINGE + MBSTD + CONSTANT + widths(64, 48),
    "sn_hinge_mbstd4_constant_batch128": SN_HINGE + MBSTD + CONSTANT + ["--config.batch_size=128"],
    "sn_hinge_mbstd4_constant_ema0.9999": SN_HINGE + MBSTD + CONSTANT + [
        "--config.ema.decay=0.9999"],
}
SCREEN_STEPS = 3000
SCREEN_RUN = [f"--config.num_train_steps={SCREEN_STEPS}", "--config.eval.num_samples=2000",
              "--config.eval_every_steps=3000", "--config.checkpoint_every_steps=3000"]
# The full-length runs, scored once at the end: the candidate against the
# config's recipe at its 6,000 steps.
CANDIDATE = SN_HINGE + MBSTD + CONSTANT
CONFIRM = {"new": OLD + CANDIDATE + ["--config.num_train_steps=20000"],
           "old": OLD + ["--config.num_train_steps=6000"]}
CONFIRM_RUN = ["--config.eval.num_samples=10000", "--config.eval_every_steps=1000000"]

FLAGS = flags.FLAGS


def define_flags():
  """Flags for the command line only, so that tests can import this module."""
  flags.DEFINE_enum("stage", "screen", ["screen", "confirm"], "Which runs.")
  flags.DEFINE_list("only", None, "Variants to run (default: all of the stage's).")
  flags.DEFINE_list("seeds", ["0"], "Seeds (confirm stage).")
  flags.DEFINE_integer("parallel", 2, "Runs at once, each on a core of its own.")
  flags.DEFINE_string("workdir_root", "runs/dcgan_mnist_sweep", "Where the workdirs go.")


def row(name: str, seed: int, overrides: list[str], result: dict) -> dict:
  last = result["eval"] or {}
  shares = [last[f"eval/class_share/{k}"] for k in range(10) if f"eval/class_share/{k}" in last]
  command = " ".join([f"{os.path.basename(sys.executable)} -m gan_jax.main", f"--config={CONFIG}",
                      f"--workdir={result['workdir']}", *overrides])
  return {"variant": name, "seed": seed, "steps": last.get("step"),
          "minutes": fid_against_minutes(result["workdir"])[0][-1] if shares else None,
          "steps_per_sec": result["steps_per_sec"], "load_average": result.get("load_average"),
          "returncode": result["returncode"],
          "num_samples": (result["provenance"] or {}).get("num_samples"),
          "fid": last.get("eval/fid"), "precision": last.get("eval/precision"),
          "recall": last.get("eval/recall"), "class_kl": last.get("eval/class_kl"),
          "min_class_share": min(shares) if shares else None,
          "max_class_share": max(shares) if shares else None, "command": command}


def main(argv):
  del argv
  if FLAGS.stage == "screen":
    variants = {name: OLD + overrides + SCREEN_RUN
                for name, overrides in {**SCREEN, **UNTRIED}.items()}
    seeds, steps = [0], SCREEN_STEPS  # run_variants skips a run finished at `steps`
  else:
    variants = {name: overrides + CONFIRM_RUN for name, overrides in CONFIRM.items()}
    seeds, steps = [int(s) for s in FLAGS.seeds], None
  names = FLAGS.only or list(SCREEN if FLAGS.stage == "screen" else CONFIRM)
  unknown = sorted(set(names) - set(variants))
  if unknown:
    raise app.UsageError(f"Unknown variant(s) {unknown}; valid: {', '.join(variants)}.")
  runs = {f"{FLAGS.stage}_{name}_s{seed}": (name, seed, variants[name] + [f"--config.seed={seed}"])
          for name in names for seed in seeds}

  def log(message):
    print(f"{time.strftime('%H:%M:%S')} load {os.getloadavg()[0]:.2f}: {message}", flush=True)

  results = run_variants(CONFIG, {key: overrides for key, (_, _, overrides) in runs.items()},
                         workdir_root=FLAGS.workdir_root, parallel=FLAGS.parallel,
                         pin_cpus=can_pin_cpus(FLAGS.parallel), num_train_steps=steps, log=log)
  record = {"runs": {}}
  if os.path.exists(OUTPUT):
    with open(OUTPUT) as f:
      record = json.load(f)
  for key, (name, seed, overrides) in runs.items():
    if results[key]["returncode"] == 0:
      record["runs"][key] = {"stage": FLAGS.stage, **row(name, seed, overrides, results[key])}
  record["config"] = CONFIG
  summary.write_json(OUTPUT, record)


if __name__ == "__main__":
  define_flags()
  app.run(main)
