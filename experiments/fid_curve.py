"""Classifier-FID against wall-clock training time, one curve per run, from
the runs' metrics.jsonl; and a grid of one run's samples (the README gives
its digit shares, from experiments/results/dcgan_mnist_sweep.json). The
README's figures:

    python -m experiments.fid_curve \\
        --runs=classic=runs/dcgan_mnist_classic,dcgan_mnist=runs/dcgan_mnist_sweep/confirm_main_s0 \\
        --grid_run=runs/dcgan_mnist_sweep/confirm_main_s0

metrics.jsonl keeps no clock, but every logged row carries the rate since the
row before it, timed from the start of the training loop (compilation and
evaluations included), so the interval's seconds are its steps over its
rate, and their running sum is the wall clock at each row. Evaluations sit
between logged rows, so an evaluation's time is the clock at its step.
"""

from __future__ import annotations

import os

from absl import app, flags

from gan_jax.metric_writer import read_metrics

FLAGS = flags.FLAGS


def training_clock(rows: list[dict]) -> dict[int, float]:
  """Seconds since the training loop started, at each logged step."""
  seconds, last_step, clock = 0.0, 0, {}
  for row in sorted((r for r in rows if "steps_per_sec" in r), key=lambda r: r["step"]):
    seconds += (row["step"] - last_step) / row["steps_per_sec"]
    last_step = row["step"]
    clock[row["step"]] = seconds
  return clock


def fid_against_minutes(workdir: str) -> tuple[list[float], list[float], list[int]]:
  """(minutes, FID, step) at each evaluation of the run in `workdir`."""
  rows = read_metrics(workdir)
  clock = training_clock(rows)
  points = sorted((r["step"], r["eval/fid"]) for r in rows if "eval/fid" in r)
  missing = [step for step, _ in points if step not in clock]
  if missing:
    raise ValueError(f"{workdir}: evaluations at steps {missing} have no logged rate row "
                     f"(log_every_steps must divide eval_every_steps)")
  return ([clock[s] / 60 for s, _ in points], [fid for _, fid in points],
          [s for s, _ in points])


def plot_curves(runs: dict[str, str], output: str) -> None:
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  fig, ax = plt.subplots(figsize=(6, 4))
  for label, workdir in runs.items():
    minutes, fids, steps = fid_against_minutes(workdir)
    ax.plot(minutes, fids, marker="o", label=f"{label} ({steps[-1]:,} steps)")
  ax.set_xlabel("wall-clock training minutes (compilation and evaluations included)")
  ax.set_ylabel("classifier-FID (in-training evaluations)")
  ax.set_yscale("log")
  ax.grid(True, which="both", alpha=0.3)
  ax.legend()
  fig.tight_layout()
  os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
  fig.savefig(output, dpi=100)
  plt.close(fig)


def write_grid(workdir: str, output: str, num: int = 100) -> None:
  """`num` samples (seed 0) of the run's latest checkpoint, EMA weights
  where they exist, as gan_jax.sample's grid."""
  from gan_jax import sample
  from gan_jax.run import restore_for_inference, resolved_dataset

  config, family, state = restore_for_inference(workdir, None)
  sample.write_samples(family, state, resolved_dataset(config), kind="grid", output=output,
                       num=num, seed=0)


def define_flags():
  flags.DEFINE_list("runs", None, "label=workdir pairs, one curve each.", required=True)
  flags.DEFINE_string("output", "experiments/results/figures/dcgan_mnist_fid_curve.png",
                      "The curve's PNG.")
  flags.DEFINE_string("grid_run", None, "A workdir whose samples to draw.")
  flags.DEFINE_string("grid_output", "experiments/results/figures/dcgan_mnist_grid.png",
                      "The grid's PNG.")


def main(argv):
  del argv
  runs = dict(pair.split("=", 1) for pair in FLAGS.runs)
  plot_curves(runs, FLAGS.output)
  if FLAGS.grid_run:
    write_grid(FLAGS.grid_run, FLAGS.grid_output)


if __name__ == "__main__":
  define_flags()
  app.run(main)
