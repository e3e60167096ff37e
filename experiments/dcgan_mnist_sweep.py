"""The search for configs/dcgan_mnist.py's recipe (issue #24: an
unconditional MNIST DCGAN that draws every digit, evenly, in 10 CPU minutes).

    python -m experiments.dcgan_mnist_sweep --stage=screen [--only=a,b]
    python -m experiments.dcgan_mnist_sweep --stage=long [--only=a,b]
    python -m experiments.dcgan_mnist_sweep --stage=confirm [--seeds=0,1,2]

`screen` trains each variant for 3,000 steps and scores 2,000 EMA samples
once, at the end; `long` trains the screen's best for as long as the main
job's budget allows (LONG: steps per variant), scoring 2,000 samples every
4,000 steps; `confirm` trains chosen recipes (CONFIRM) one run per seed and
scores 10,000 samples once. All run two processes at once, each pinned to a
core of its own, and write experiments/results/dcgan_mnist_sweep.json: per
run the variant,
seed, steps, minutes of training up to the last evaluation (compilation and
earlier evaluations included; on a shared machine rank by steps), the
median training rate with the load average at its end, FID, precision, class
KL, the smallest and largest digit share and the command that trained it.

Every variant starts from configs/dcgan_mnist_classic.py (the main job's
recipe before this sweep) and OLD, the overrides that pin that recipe
(batch norm in D, non-saturating loss, Adam 2e-4 decayed linearly to 0 over
6,000 steps, batch 64, widths 32, EMA 0.999 from step 500), so the rows keep
their meaning whatever the defaults become.
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

CONFIG = "configs/dcgan_mnist_classic.py"
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
# InfoGAN's categorical code with 10 categories (gan_jax.gan), G's code
# embedding as cdcgan_mnist's label embedding.
CODE10 = ["--config.latent_code.categories=10", "--config.generator.label_embedding_dim=16"]
# Screened (results/dcgan_mnist_sweep.json).
SCREEN = {
    "old": [],
    "mbstd4": MBSTD,
    "sn_hinge_mbstd4": SN_HINGE + MBSTD,
    "sn_hinge_constant": SN_HINGE + CONSTANT,
    "sn_hinge_mbstd4_constant": SN_HINGE + MBSTD + CONSTANT,
    "sn_hinge_mbstd4_constant_lr4e-4": SN_HINGE + MBSTD + CONSTANT + both("learning_rate", 4e-4),
    "sn_hinge_mbstd4_constant_pack2": SN_HINGE + MBSTD + CONSTANT + ["--config.pack_size=2"],
    "code10": CODE10,
    "sn_hinge_mbstd4_constant_code10": SN_HINGE + MBSTD + CONSTANT + CODE10,
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
LR4 = both("learning_rate", 4e-4)
# name -> (overrides, steps): the screen's best at length, about what the
# main job's 10 minutes hold on two cores (40 steps/s).
LONG = {
    "sn_hinge_mbstd4_constant_code10": (SN_HINGE + MBSTD + CONSTANT + CODE10, 16000),
    "sn_hinge_mbstd4_constant_code10_lr4e-4": (SN_HINGE + MBSTD + CONSTANT + CODE10 + LR4, 22000),
    "sn_hinge_constant_code10_lr4e-4": (SN_HINGE + CONSTANT + CODE10 + LR4, 22000),
    "sn_hinge_mbstd4_constant_code20_lr4e-4": (
        SN_HINGE + MBSTD + CONSTANT + CODE10 + LR4 + ["--config.latent_code.categories=20"],
        22000),
    "sn_hinge_mbstd4_code10_lr4e-4": (SN_HINGE + MBSTD + CODE10 + LR4, 22000),  # decayed to 0
}
LONG_RUN = ["--config.eval.num_samples=2000", "--config.eval_every_steps=4000",
            "--config.checkpoint_every_steps=100000"]
# The full-length runs: name -> (config, overrides). "main" is the README's
# main-job command itself (configs/dcgan_mnist.py with its own evaluations),
# run alone on both cores (--parallel=1), then scored on 10,000 samples by
# gan_jax.evaluate (OFFLINE); "new" is the first candidate (the screen's best
# without the code) and "old" the classic recipe at its 6,000 steps, both
# timed on one core each and scored on 10,000 samples in training
# (CONFIRM_RUN).
CONFIRM = {"main": ("configs/dcgan_mnist.py", []),
           # The same recipe, untuned, on Fashion-MNIST (issue #24's check).
           "fashion": ("configs/dcgan_fashion_mnist.py", []),
           "new": (CONFIG, OLD + SN_HINGE + MBSTD + CONSTANT + ["--config.num_train_steps=20000"]),
           "old": (CONFIG, OLD + ["--config.num_train_steps=6000"])}
OFFLINE = ("main", "fashion")
CONFIRM_RUN = ["--config.eval.num_samples=10000", "--config.eval_every_steps=1000000"]
CONFIRM_SAMPLES = 10_000

FLAGS = flags.FLAGS


def define_flags():
  """Flags for the command line only, so that tests can import this module."""
  flags.DEFINE_enum("stage", "screen", ["screen", "long", "confirm"], "Which runs.")
  flags.DEFINE_list("only", None, "Variants to run (default: all of the stage's).")
  flags.DEFINE_list("seeds", ["0"], "Seeds (confirm stage).")
  flags.DEFINE_integer("parallel", 2, "Runs at once, each on a core of its own.")
  flags.DEFINE_string("workdir_root", "runs/dcgan_mnist_sweep", "Where the workdirs go.")


def row(name: str, seed: int, config: str, overrides: list[str], result: dict,
        cores: int) -> dict:
  last = result["eval"] or {}
  shares = [last[f"eval/class_share/{k}"] for k in range(10) if f"eval/class_share/{k}" in last]
  command = " ".join([f"{os.path.basename(sys.executable)} -m gan_jax.main", f"--config={config}",
                      f"--workdir={result['workdir']}", *overrides])
  return {"variant": name, "seed": seed, "steps": last.get("step"),
          "minutes": fid_against_minutes(result["workdir"])[0][-1] if shares else None,
          "steps_per_sec": result["steps_per_sec"], "load_average": result.get("load_average"),
          "returncode": result["returncode"], "cores": cores,
          "dataset": (result["provenance"] or {}).get("dataset"),
          "num_samples": (result["provenance"] or {}).get("num_samples"),
          "fid": last.get("eval/fid"), "precision": last.get("eval/precision"),
          "recall": last.get("eval/recall"), "class_kl": last.get("eval/class_kl"),
          "floor_fid": last.get("eval/floor/fid"),
          "min_class_share": min(shares) if shares else None,
          "max_class_share": max(shares) if shares else None, "command": command}


def scored_offline(result: dict) -> dict:
  """`result` with its evaluation replaced by gan_jax.evaluate's on
  CONFIRM_SAMPLES samples of the last checkpoint (classifier metrics only)."""
  from gan_jax.evaluation.evaluate import evaluate_workdir

  scores = evaluate_workdir(result["workdir"], num_samples=CONFIRM_SAMPLES, inception=False)
  evaluation = {"step": scores["step"], **{f"eval/{k}": v for k, v in scores.items()
                                          if isinstance(v, float)}}
  return {**result, "eval": evaluation,
          "provenance": {**(result["provenance"] or {}), "num_samples": CONFIRM_SAMPLES}}


def main(argv):
  del argv
  # name -> (config, overrides, steps): run_variants skips a run finished at
  # its steps (None: never taken as finished).
  if FLAGS.stage == "screen":
    variants = {name: (CONFIG, OLD + overrides + SCREEN_RUN, SCREEN_STEPS)
                for name, overrides in {**SCREEN, **UNTRIED}.items()}
    seeds, default_names = [0], list(SCREEN)
  elif FLAGS.stage == "long":
    variants = {name: (CONFIG, OLD + overrides + LONG_RUN + [f"--config.num_train_steps={steps}"],
                       steps) for name, (overrides, steps) in LONG.items()}
    seeds, default_names = [0], list(LONG)
  else:
    variants = {name: (config, overrides + ([] if name in OFFLINE else CONFIRM_RUN), None)
                for name, (config, overrides) in CONFIRM.items()}
    seeds, default_names = [int(s) for s in FLAGS.seeds], list(CONFIRM)
  names = FLAGS.only or default_names
  unknown = sorted(set(names) - set(variants))
  if unknown:
    raise app.UsageError(f"Unknown variant(s) {unknown}; valid: {', '.join(variants)}.")
  runs = {f"{FLAGS.stage}_{name}_s{seed}": (name, seed,
                                             variants[name][1] + [f"--config.seed={seed}"])
          for name in names for seed in seeds}

  def log(message):
    print(f"{time.strftime('%H:%M:%S')} load {os.getloadavg()[0]:.2f}: {message}", flush=True)

  pin = can_pin_cpus(FLAGS.parallel)
  results = {}
  for config, steps in dict.fromkeys((variants[name][0], variants[name][2])
                                     for name, _, _ in runs.values()):
    group = {key: overrides for key, (name, _, overrides) in runs.items()
             if variants[name][0] == config and variants[name][2] == steps}
    results.update(run_variants(config, group, workdir_root=FLAGS.workdir_root,
                                parallel=FLAGS.parallel, pin_cpus=pin,
                                num_train_steps=steps, log=log))
  record = {"runs": {}}
  if os.path.exists(OUTPUT):
    with open(OUTPUT) as f:
      record = json.load(f)
  for key, (name, seed, overrides) in runs.items():
    if results[key]["returncode"] == 0 and FLAGS.stage == "confirm" and name in OFFLINE:
      results[key] = scored_offline(results[key])
    if results[key]["returncode"] == 0:
      record["runs"][key] = {"stage": FLAGS.stage,
                             **row(name, seed, variants[name][0], overrides, results[key],
                                   cores=1 if pin else len(os.sched_getaffinity(0)))}
  record["config"] = CONFIG
  summary.write_json(OUTPUT, record)


if __name__ == "__main__":
  define_flags()
  app.run(main)
