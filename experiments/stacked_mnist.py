"""Experiment (c): Stacked MNIST modes and KL, DCGAN with and without PacGAN packing.

    python -m gan_jax.prepare --dataset=stacked_mnist
    python experiments/stacked_mnist.py [--parallel=2] [--workdir_root=runs/stacked_mnist]

Both runs use configs/dcgan_stacked_mnist.py (20,000 steps) and differ only
in `pack_size`. Each run's last evaluation classifies each channel of 26,000
EMA samples with the committed MNIST classifier and counts the modes (of 1000)
and KL(generated || uniform). Writes experiments/results/stacked_mnist.json
and prints the Markdown table next to the published figures it compares with.
"""

from __future__ import annotations

import json
import os
import sys

from absl import app, flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from configs import dcgan_stacked_mnist  # noqa: E402
from experiments.sweep import can_pin_cpus, run_variants  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_integer("parallel", 2, "Runs at once.")
flags.DEFINE_integer("seed", 0, "Training seed.")
flags.DEFINE_string("workdir_root", "runs/stacked_mnist", "Where the runs go.")
flags.DEFINE_string("output", "experiments/results/stacked_mnist.json", "Results JSON.")

CONFIG = "configs/dcgan_stacked_mnist.py"
VARIANTS = {
    "DCGAN": ["--config.pack_size=1"],
    "PacDCGAN2 (pack_size=2)": ["--config.pack_size=2"],
}
# Published: PacGAN (Lin et al. 2018), Table 2, and GDPP (Elfeki et al. 2019),
# Table 2; their architectures and budgets differ from ours.
PUBLISHED = [
    ("DCGAN (PacGAN, Table 2)", "78.9 ± 6.5", "4.50"),
    ("PacDCGAN2 (PacGAN, Table 2)", "1000.0 ± 0.0", "0.06"),
    ("WGAN-GP (GDPP, Table 2)", "995", "0.148"),
]


def run_name(variant: str) -> str:
  return variant.split(" ")[0].lower() + f"_s{FLAGS.seed}"


def table(rows: dict) -> str:
  lines = ["| model | source | steps | modes (of 1000) | KL(gen ‖ uniform) | minutes |",
           "|---|---|---|---|---|---|"]
  for name, row in rows.items():
    minutes = f"{row['seconds'] / 60:.0f}" if row.get("seconds") else "–"
    lines.append(f"| {name} | this repo, seed {FLAGS.seed} | {row['step']} | {int(row['modes'])} "
                 f"| {row['reverse_kl']:.3f} | {minutes} |")
  floor = next(iter(rows.values()))
  lines.append(f"| real training stacks (floor) | this repo | – | {int(floor['floor/modes'])} | "
               f"{floor['floor/reverse_kl']:.3f} | – |")
  for name, modes, kl in PUBLISHED:
    lines.append(f"| {name} | published | – | {modes} | {kl} | – |")
  return "\n".join(lines)


def main(argv):
  del argv
  variants = {run_name(v): [*overrides, f"--config.seed={FLAGS.seed}"]
              for v, overrides in VARIANTS.items()}
  results = run_variants(CONFIG, variants, workdir_root=FLAGS.workdir_root,
                         parallel=FLAGS.parallel, pin_cpus=can_pin_cpus(FLAGS.parallel),
                         num_train_steps=dcgan_stacked_mnist.get_config().num_train_steps)
  rows = {}
  for variant in VARIANTS:
    result = results[run_name(variant)]
    evaluation = result["eval"] or {}
    rows[variant] = {key.removeprefix("eval/"): value for key, value in evaluation.items()}
    rows[variant].update(step=evaluation.get("step"), seconds=result["seconds"])
  os.makedirs(os.path.dirname(os.path.abspath(FLAGS.output)), exist_ok=True)
  with open(FLAGS.output, "w") as f:
    json.dump({"config": CONFIG, "variants": variants, "runs": results, "table": rows},
              f, indent=2)
  print(table(rows))


if __name__ == "__main__":
  app.run(main)
