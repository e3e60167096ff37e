"""Rebuilds every result table in the READMEs from the result files.

    python -m experiments.report          # rewrite the tables in place
    python -m experiments.report --check  # exit 1 if a README table differs

A table lives between `<!-- report:NAME -->` and `<!-- /report:NAME -->` in
README.md, experiments/README.md or benchmarks/README.md; NAME is a key of
TABLES, whose function builds the table from the JSON in experiments/results/
and benchmarks/results/ (and the classifiers' provenance). Numbers that no file
holds do not belong in a table. Imports nothing heavier than the standard
library, so the check is fast enough for the test suite.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
from typing import Callable, Optional

from experiments.summary import format_mean_se, mean_and_standard_error

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
READMES = ("README.md", "experiments/README.md", "benchmarks/README.md")
EXPERIMENTS = "experiments/results"
BENCHMARKS = "benchmarks/results"


class ReportError(Exception):
  """A result file that cannot back a table (a run stopped early, a missing key)."""


def load(path: str) -> dict:
  with open(os.path.join(REPO_ROOT, path)) as f:
    return json.load(f)


def markdown(header: list[str], rows: list[list[str]], align: Optional[str] = None) -> str:
  """A Markdown table; `align` has one letter per column, l or r."""
  align = align or "l" * len(header)
  rule = "|" + "|".join("---:" if a == "r" else "---" for a in align) + "|"
  lines = ["| " + " | ".join(header) + " |", rule]
  lines += ["| " + " | ".join(row) + " |" for row in rows]
  return "\n".join(lines)


def thousands(value: float) -> str:
  return f"{value:,.0f}"


# ---------------------------------------------------------------- experiments

LOSS_LABELS = {"wasserstein": "wasserstein (GP)"}


def mixture_rows(results: dict) -> dict[tuple[str, str], dict]:
  """Per (dataset, loss): seeds, steps, and mean ± SE of modes, high-quality %
  and reverse KL, refusing runs that stopped before their last step."""
  rows = {}
  for dataset, by_loss in results["results"].items():
    for loss, runs in by_loss.items():
      for run in runs:
        if run.get("step") != run["num_train_steps"]:
          raise ReportError(f"mixtures: {dataset} {loss} seed {run['seed']} stopped at "
                            f"step {run.get('step')} of {run['num_train_steps']}")
      steps = {run["num_train_steps"] for run in runs}
      if len(steps) != 1:
        raise ReportError(f"mixtures: {dataset} {loss} mixes budgets {sorted(steps)}")
      rows[dataset, loss] = {
          "seeds": sorted(run["seed"] for run in runs), "steps": steps.pop(),
          "modes": mean_and_standard_error([r["modes"] for r in runs]),
          "hq": mean_and_standard_error([100 * r["high_quality_fraction"] for r in runs]),
          "kl": mean_and_standard_error([r["reverse_kl"] for r in runs]),
          "job_seconds": {r.get("job_seconds") for r in runs}}
  return rows


def seed_range(seeds: list[int]) -> str:
  if seeds == list(range(seeds[0], seeds[-1] + 1)) and len(seeds) > 1:
    return f"{seeds[0]}–{seeds[-1]}"
  return ", ".join(map(str, seeds))


def mixtures_table(results: Optional[dict] = None) -> str:
  results = results or load(f"{EXPERIMENTS}/mixtures.json")
  rows = mixture_rows(results)
  table = markdown(
      ["dataset", "loss", "steps", "seeds", "modes", "high-quality %", "reverse KL", "job (min)"],
      [[dataset, LOSS_LABELS.get(loss, loss), thousands(r["steps"]), seed_range(r["seeds"]),
        format_mean_se(*r["modes"], ".1f"), format_mean_se(*r["hq"], ".1f"),
        format_mean_se(*r["kl"], ".3f"), job_minutes(r["job_seconds"])]
       for (dataset, loss), r in rows.items()], "llrllllr")
  if "machine" in results:
    table += f"\n\n{machine_label(results['machine'])}."
  return table


IMAGE_METRICS = (("fid", "FID", ".1f"), ("kid", "KID", ".2f"), ("precision", "precision", ".3f"),
                 ("recall", "recall", ".3f"), ("density", "density", ".3f"),
                 ("coverage", "coverage", ".3f"))


# Standard FID Inception metrics, shown where a results file has them.
INCEPTION_METRICS = (("inception_fid", "Inception FID", ".2f"),
                     ("inception_kid", "Inception KID", ".4f"))


def gan_vs_vae_table(results: Optional[dict] = None) -> str:
  results = results or load(f"{EXPERIMENTS}/gan_vs_vae.json")
  inception = tuple(m for m in INCEPTION_METRICS if all(m[0] in r for r in results.values()))
  counts = {r.get("inception_num_samples", r["num_samples"]) for r in results.values()}
  if inception and len(counts) > 1:
    raise ReportError(f"gan_vs_vae: the rows' Inception metrics use {sorted(counts)} samples")
  # The Inception metrics may use fewer samples than the classifier's: the label says so.
  inception = tuple((key, f"{label} ({thousands(next(iter(counts)))})", spec)
                    for key, label, spec in inception)
  metrics = IMAGE_METRICS + inception
  header = ["model", "step", *(label for _, label, _ in metrics), "classifier score",
            "test −ELBO (nats)", "test IWAE k=100 (nats)"]
  rows = []
  for name, r in results.items():
    rows.append([name, thousands(r["step"]),
                 *(format(r[key], spec) for key, _, spec in metrics),
                 f"{r['classifier_score']:.2f}",
                 f"{r['test_negative_elbo']:.2f}" if "test_negative_elbo" in r else "–",
                 f"{r['test_iwae_nll']:.2f}" if "test_iwae_nll" in r else "–"])
  floor = next(iter(results.values()))
  rows.append(["real train vs test (floor)", "–",
               *(format(floor["floor/" + key], spec) for key, _, spec in metrics),
               "–", "–", "–"])
  return markdown(header, rows, "lr" + "r" * (len(header) - 2))


def emoji_table(results: Optional[dict] = None) -> str:
  """experiments/emoji.py's runs: Inception FID/KID on the test emoji, with
  the real-vs-real floor and the training wall-clock."""
  results = results or load(f"{EXPERIMENTS}/emoji.json")
  header = ["run", "steps", "training min (CPU)", "samples", "Inception FID", "Inception KID",
            "precision", "recall"]

  def scores(r, prefix=""):
    # Subsets as large as both sets are all the whole sets: no subsampling error.
    whole = r["inception_kid_subset_size"] >= r["inception_num_samples"]
    kid_se = math.nan if whole else r[prefix + "inception_kid_se"]
    return [f"{r[prefix + 'inception_fid']:.1f}",
            format_mean_se(r[prefix + "inception_kid"], kid_se, ".4f"),
            f"{r[prefix + 'inception_precision']:.3f}", f"{r[prefix + 'inception_recall']:.3f}"]

  rows = []
  for size, r in results.items():
    if r["step"] < r["num_train_steps"]:
      raise ReportError(f"emoji {size}: stopped at step {r['step']} of {r['num_train_steps']}")
    rows.append([f"`{r['config']}`", thousands(r["step"]),
                 f"{r['training_minutes']:.0f} ({cpu_label(r['cpu'])})",
                 str(r["inception_num_samples"]), *scores(r)])
    rows.append([f"real train vs test (floor for {size})", "–", "–",
                 str(r["inception_num_samples"]), *scores(r, "floor/")])
  return markdown(header, rows, "lrlrrrrr")


MNIST_LOSS_LABELS = {"non-saturating": "non-saturating", "hinge": "hinge",
                     "least": "least squares", "wgan-gp": "WGAN-GP (λ = 10, no BN in D)"}


def mnist_losses_table(results: Optional[dict] = None) -> str:
  results = results or load(f"{EXPERIMENTS}/mnist_losses.json")
  by_loss: dict[str, list[dict]] = {}
  job_seconds: dict[str, set] = {}
  for name, run in results["runs"].items():
    evaluation = run["eval"] or {}
    if run["returncode"] != 0 or evaluation.get("step") != results["num_train_steps"]:
      raise ReportError(f"mnist_losses: {name} has no evaluation at its last step")
    loss = name.rsplit("_s", 1)[0]
    by_loss.setdefault(loss, []).append(evaluation)
    job_seconds.setdefault(loss, set()).add(run.get("job_seconds"))
  rows = []
  for prefix, label in MNIST_LOSS_LABELS.items():
    evaluations = by_loss[prefix]
    rows.append([label, str(len(evaluations)), *(
        format_mean_se(*mean_and_standard_error([e[f"eval/{key}"] for e in evaluations]), spec)
        for key, _, spec in IMAGE_METRICS),
        format_mean_se(*mean_and_standard_error([e["eval/class_kl"] for e in evaluations]), ".3f"),
        job_minutes(job_seconds[prefix])])
  floor = next(iter(by_loss.values()))[0]
  rows.append(["real train vs test (floor)", "–",
               *(format(floor[f"eval/floor/{key}"], spec) for key, _, spec in IMAGE_METRICS),
               "–", "–"])
  table = markdown(["loss", "seeds", *(label for _, label, _ in IMAGE_METRICS), "class KL",
                    "job (min)"], rows, "lrllllllll")
  if "machine" in results:
    table += (f"\n\n{machine_label(results['machine'])}; {results['parallel']} jobs at once, "
              "each on its own core.")
  return table


def job_minutes(seconds: set) -> str:
  """The wall-clock in minutes of the job(s) that made a row's seeds, "+"
  between jobs; "–" for rows from one process per seed."""
  if None in seconds:
    return "–"
  return " + ".join(f"{s / 60:.1f}" for s in sorted(seconds))


def machine_label(machine: dict) -> str:
  return (f"{cpu_label(machine['cpu'])}, {machine['cpus']} cores, 1-minute load average "
          f"{machine['load_average']:.1f} as the file was written (the command's own work "
          "included)")


# Published figures the Stacked MNIST table is set beside (other networks and budgets).
STACKED_MNIST_PUBLISHED = [
    ("DCGAN", "PacGAN (Lin et al. 2018), Table 2", "78.9 ± 6.5", "4.50"),
    ("PacDCGAN2", "PacGAN (Lin et al. 2018), Table 2", "1000.0 ± 0.0", "0.06"),
    ("WGAN-GP", "GDPP (Elfeki et al. 2019), Table 2", "995", "0.148"),
]
STACKED_MNIST_DEFAULT = "PacDCGAN2_G64_D48_lr4e-4_const"


def stacked_mnist_rows(results: Optional[dict] = None) -> list[dict]:
  rows = list((results or load(f"{EXPERIMENTS}/stacked_mnist.json"))["table"].items())
  for name, row in rows:
    planned = int(re.search(r"_s\d+_(\d+)k", name).group(1)) * 1000
    if row["step"] != planned:
      raise ReportError(f"stacked_mnist: {name} ended at step {row['step']} of {planned}")
  return [row for _, row in rows]


def stacked_mnist_table(results: Optional[dict] = None) -> str:
  rows = []
  for row in stacked_mnist_rows(results):
    default = " (the config's default)" if row["variant"] == STACKED_MNIST_DEFAULT else ""
    variant, _, remark = row["variant"].partition(" ")
    rows.append([f"`{variant.lower()}` {remark}".strip() + default, str(row["seed"]),
                 thousands(row["step"]), f"{row['modes']:.0f}", f"{row['reverse_kl']:.3f}",
                 f"{row['channel_confidence']:.3f}"])
  floor = stacked_mnist_rows(results)[0]
  rows.append(["real training stacks (floor)", "–", "–", f"{floor['floor/modes']:.0f}",
               f"{floor['floor/reverse_kl']:.3f}", "–"])
  rows += [[f"{model}: {source}", "–", "–", modes, kl, "–"]
           for model, source, modes, kl in STACKED_MNIST_PUBLISHED]
  return markdown(["variant", "seed", "steps", "modes (of 1000)", "KL(gen ‖ uniform)",
                   "channel confidence"], rows, "lrrrrr")


DCGAN_SWEEP = f"{EXPERIMENTS}/dcgan_mnist_sweep.json"


def dcgan_sweep_runs(stage: str, sweep: Optional[dict] = None) -> list[dict]:
  """The sweep's finished runs of `stage` ("screen" or "confirm")."""
  runs = [run for run in (sweep or load(DCGAN_SWEEP))["runs"].values() if run["stage"] == stage]
  for run in runs:
    if run["returncode"] != 0 or run["fid"] is None:
      raise ReportError(f"dcgan_mnist_sweep: {run['variant']} (seed {run['seed']}) "
                        f"has no final evaluation")
  return runs


def shares(run: dict) -> str:
  return f"{100 * run['min_class_share']:.1f}–{100 * run['max_class_share']:.1f} %"


def dcgan_sweep_table(sweep: Optional[dict] = None) -> str:
  rows = []
  for run in sorted(dcgan_sweep_runs("screen", sweep), key=lambda run: run["fid"]):
    rows.append([f"`{run['variant']}`", thousands(run["steps"]), f"{run['steps_per_sec']:.1f}",
                 f"{run['fid']:.1f}",
                 f"{run['precision']:.3f}", f"{run['recall']:.3f}", f"{run['class_kl']:.3f}",
                 shares(run)])
  return markdown(["variant", "steps", "steps/s", "FID", "precision", "recall",
                   "class KL", "digit shares"], rows, "lrrrrrrr")


def dcgan_long_table(sweep: Optional[dict] = None) -> str:
  rows = []
  for run in sorted(dcgan_sweep_runs("long", sweep), key=lambda run: run["fid"]):
    rows.append([f"`{run['variant']}`", thousands(run["steps"]), f"{run['minutes']:.1f}",
                 f"{run['fid']:.1f}", f"{run['precision']:.3f}", f"{run['recall']:.3f}",
                 f"{run['class_kl']:.3f}", shares(run)])
  return markdown(["variant", "steps", "minutes (one core)", "FID", "precision", "recall",
                   "class KL", "digit shares"], rows, "lrrrrrrr")


RECIPE_METRICS = (("minutes", "training min", ".1f"), ("fid", "FID", ".1f"),
                  ("precision", "precision", ".3f"), ("class_kl", "class KL", ".3f"),
                  ("min_class_share", "smallest digit", ".3f"),
                  ("max_class_share", "largest digit", ".3f"))


def dcgan_recipe_table(sweep: Optional[dict] = None) -> str:
  by_variant: dict[str, list[dict]] = {}
  for run in dcgan_sweep_runs("confirm", sweep):
    by_variant.setdefault(run["variant"], []).append(run)
  rows = []
  for variant, runs in by_variant.items():
    floors = [run["floor_fid"] for run in runs if run.get("floor_fid") is not None]
    rows.append([f"`{variant}`", "/".join(sorted({run["dataset"] for run in runs})),
                 "/".join(sorted({str(run["cores"]) for run in runs})),
                 seed_range(sorted(run["seed"] for run in runs)),
                 "/".join(sorted({thousands(run["steps"]) for run in runs})),
                 "/".join(sorted({thousands(run["num_samples"]) for run in runs})), *(
        format_mean_se(*mean_and_standard_error([run[key] for run in runs]), spec)
        for key, _, spec in RECIPE_METRICS),
        f"{sum(floors) / len(floors):.1f}" if floors else "–"])
  return markdown(["recipe", "dataset", "cores", "seeds", "steps", "samples",
                   *(label for _, label, _ in RECIPE_METRICS), "real-data FID"], rows,
                  "lllrrrlllllll")


def classifiers_table() -> str:
  rows = []
  for name in ("mnist", "fashion_mnist"):
    record = load(f"gan_jax/evaluation/classifier_weights/{name}.json")
    rows.append([name, f"{100 * record['test_accuracy']:.2f} %", thousands(record["num_params"]),
                 f"`{record['sha256'][:8]}…`"])
  return markdown(["classifier", "test accuracy", "parameters", "SHA-256"], rows, "lrrl")


# ----------------------------------------------------------------- benchmarks

def widths(case: dict) -> str:
  def width(net):
    return net.get("features", net.get("base_features", net.get("hidden_units")))
  return f"{width(case['generator'])}/{width(case['discriminator'])}"


def forms(case: dict, variant: str) -> str:
  """Which (transposed) convolutions the variant ran: the reference (`xla`) or
  the phase forms, as the variant records them (older reports: read from the
  case's configured networks)."""
  recorded = case["variants"][variant].get("kernel_forms")
  if recorded:
    return ", ".join(f"{'G' if model == 'generator' else 'D'} {form}"
                     for model, form in recorded.items())
  if "conv_transpose" not in case["generator"]:
    return variant
  if variant == "xla":
    return "G xla, D xla"
  return (f"G {case['generator']['conv_transpose']}, "
          f"D {case['discriminator'].get('conv', 'xla')}")


def step_table(path: str, *, per_device: bool = False) -> str:
  suite = load(path)
  rows = []
  for case_name, case in suite["cases"].items():
    for variant, r in case["variants"].items():
      speedup = case.get(f"speedup_{variant}_vs_xla")
      mib = r["memory"]["xla_step_bytes"] / 2**20
      rows.append([case_name.rsplit("_b", 1)[0], widths(case), str(case["n_critic"]),
                   forms(case, variant), str(case["batch_size"]), f"{r['steps_per_sec']:.2f}",
                   thousands(r["examples_per_sec"]), f"{r['compile_seconds']:.1f}",
                   f"{r['reference_flops'] / 1e9:.2f}",
                   f"{100 * r['fraction_of_matmul_peak']:.1f}", f"{mib:.1f}",
                   f"{speedup:.2f}×" if speedup else ""])
  return markdown(["case", "widths G/D", "n_critic", "variant", "batch", "steps/s",
                   "examples/s", "compile s", "model GFLOP/step", "% of matmul peak",
                   "XLA step MiB" + (" per device" if per_device else ""), "speed-up"],
                  rows, "llrlrrrrrrrr")


def step_suite_table() -> str:
  return step_table(f"{BENCHMARKS}/step_suite.json")


def step_suite_devices2_table() -> str:
  return step_table(f"{BENCHMARKS}/step_suite_cpu_devices2.json", per_device=True)


def step_suite_library_kernels_table() -> str:
  return step_table(f"{BENCHMARKS}/step_suite_xla_default_kernels.json")


def machine_table() -> str:
  """The machine figures each CPU run measured beside its steps."""
  rows = []
  for name in ("step_suite", "step_suite_cpu_devices2", "step_suite_xla_default_kernels"):
    suite = load(f"{BENCHMARKS}/{name}.json")
    peaks = [suite["matmul_peak_flops_by_dtype"]["float32"],
             *(p["float32"] for p in suite.get("matmul_peak_flops_before_after", [])),
             *(p["float32"] for case in suite["cases"].values()
               for p in case.get("window_matmul_peaks", []))]
    bandwidth = suite.get("memory_bandwidth_gb_per_s_by_mib", {})
    rows.append([f"`{name}.json`", str(suite["devices"]), suite["cpu_library_fusions"],
                 f"{min(peaks) / 1e9:.0f}–{max(peaks) / 1e9:.0f}",
                 ", ".join(f"{mib} MiB {gb:.1f}" for mib, gb in bandwidth.items()) or "–"])
  return markdown(["file", "devices", "cpu_library_fusions", "matmul peak GFLOP/s (range in the run)",
                   "copy bandwidth GB/s"], rows, "lrlll")


def pipeline_table() -> str:
  suite = load(f"{BENCHMARKS}/step_suite.json")
  dcgan = {case["batch_size"]: case["variants"]["phase"]["examples_per_sec"]
           for name, case in suite["cases"].items() if name.startswith("dcgan_mnist")}
  rows = [[batch, f"{r['batches_per_sec']:,.0f}", thousands(r["examples_per_sec"]),
           f"{r['examples_per_sec'] / dcgan[int(batch)]:.0f}×" if int(batch) in dcgan else ""]
          for batch, r in suite["pipeline"].items()]
  return markdown(["batch", "batches/s", "images/s", "× the DCGAN step's images/s"], rows,
                  "rrrr")


def h200_table() -> str:
  suite = load(f"{BENCHMARKS}/step_suite_h200.json")
  rows = []
  for case_name, case in suite["cases"].items():
    for variant, r in case["variants"].items():
      rows.append([case_name.rsplit("_b", 1)[0], widths(case), str(case["n_critic"]),
                   "bfloat16" if variant.endswith("bfloat16") else "float32",
                   str(case["batch_size"]), f"{r['steps_per_sec']:.2f}",
                   thousands(r["examples_per_sec"]), f"{r['compile_seconds']:.1f}",
                   f"{r['reference_flops'] / 1e12:.1f}",
                   f"{100 * r['fraction_of_bf16_matmul_peak']:.1f}",
                   f"{100 * r['fraction_of_matmul_peak']:.1f}",
                   f"{r['memory']['xla_step_bytes'] / 2**30:.1f}"])
  return markdown(["case", "widths G/D", "n_critic", "compute", "batch", "steps/s", "images/s",
                   "compile s", "model TFLOP/step", "% of bf16 peak", "% of f32 (TF32) peak",
                   "XLA step GiB"], rows, "lrrlrrrrrrrr")


def evaluation_table() -> str:
  r = load(f"{BENCHMARKS}/evaluation.json")
  warm = r["warm_phases_seconds"]
  return markdown(
      ["samples", "step", "devices", "end to end s", "warm: sampling s",
       "warm: sample features s", "warm: metrics s"],
      [[thousands(r["num_samples"]), thousands(r["step"]), str(len(r["devices"])),
        f"{r['end_to_end_seconds']:.0f}", f"{warm['sampling']:.1f}",
        f"{warm['sample_features']:.1f}", f"{warm['feature_metrics']:.1f}"]], "rrrrrrr")


# ----------------------------------------------------------------- at a glance

def glance_table() -> str:
  mixtures = mixture_rows(load(f"{EXPERIMENTS}/mixtures.json"))
  gan_vs_vae = load(f"{EXPERIMENTS}/gan_vs_vae.json")
  stacked = {(r["variant"], r["seed"]): r for r in stacked_mnist_rows()}
  suite = load(f"{BENCHMARKS}/step_suite.json")
  h200 = load(f"{BENCHMARKS}/step_suite_h200.json")
  rows = []
  for dataset, modes in (("ring8", 8), ("grid25", 25)):
    r = mixtures[dataset, "non_saturating"]
    rows.append([f"{dataset}, non-saturating loss, {r['steps']:,} steps, "
                 f"{len(r['seeds'])} seeds",
                 f"{format_mean_se(*r['modes'], '.1f')} of {modes} modes, "
                 f"{format_mean_se(*r['hq'], '.1f')} % high-quality samples"])
  main = [run for run in dcgan_sweep_runs("confirm") if run["variant"] == "main"]
  if main:
    fid, precision = ([run[key] for run in main] for key in ("fid", "precision"))
    rows.append([f"MNIST DCGAN (dcgan_mnist), {main[0]['steps']:,} steps, {len(main)} seeds, "
                 f"{main[0]['num_samples']:,} samples",
                 f"classifier-FID {format_mean_se(*mean_and_standard_error(fid), '.1f')} "
                 f"(real data: {main[0]['floor_fid']:.1f}), precision "
                 f"{format_mean_se(*mean_and_standard_error(precision), '.2f')}, digits "
                 f"{100 * min(r['min_class_share'] for r in main):.1f}–"
                 f"{100 * max(r['max_class_share'] for r in main):.1f} %"])
  for name, r in gan_vs_vae.items():
    elbo = (f"; test −ELBO {r['test_negative_elbo']:.1f} nats"
            if "test_negative_elbo" in r else "")
    inception = (f"; Inception FID {r['inception_fid']:.1f} (real data: "
                 f"{r['floor/inception_fid']:.1f}, {r['inception_num_samples']:,} samples)"
                 if "inception_fid" in r else "")
    rows.append([f"MNIST {name}, step {r['step']:,}, {r['num_samples']:,} samples",
                 f"classifier-FID {r['fid']:.1f} (real data: {r['floor/fid']:.1f})"
                 f"{inception}{elbo}"])
  for r in load(f"{EXPERIMENTS}/emoji.json").values():
    rows.append([f"Colour emoji, `{os.path.splitext(os.path.basename(r['config']))[0]}`, "
                 f"{r['step']:,} steps, {r['inception_num_samples']} samples",
                 f"Inception FID {r['inception_fid']:.1f}, KID {r['inception_kid']:.3f} "
                 f"(real data: {r['floor/inception_fid']:.1f}, {r['floor/inception_kid']:.3f})"])
  default = stacked[STACKED_MNIST_DEFAULT, 0]
  rows.append([f"Stacked MNIST, `dcgan_stacked_mnist`, {default['step']:,} steps",
               f"{default['modes']:.0f} of 1000 modes, KL {default['reverse_kl']:.3f} "
               f"(real data: {default['floor/reverse_kl']:.3f})"])
  phase = suite["cases"]["dcgan_mnist_b64"]["variants"]["phase"]
  rows.append([f"DCGAN step (classic networks), batch 64, {suite['environment']['cpu']} CPU "
               f"({suite['devices']} device)",
               f"{phase['steps_per_sec']:.1f} steps/s, "
               f"{100 * phase['fraction_of_matmul_peak']:.1f} % of the matmul peak"])
  big = h200["cases"]["sngan_cifar10_full_b1024"]["variants"]["xla/bfloat16"]
  rows.append(["SN-GAN CIFAR-10 step, batch 1024, bfloat16, one H200",
               f"{big['examples_per_sec']:,.0f} images/s, "
               f"{100 * big['fraction_of_bf16_matmul_peak']:.1f} % of the bf16 matmul peak"])
  return markdown(["experiment", "result"], rows)


def inception_table() -> str:
  speed = load(f"{BENCHMARKS}/inception_speed.json")
  fid = load(f"{BENCHMARKS}/inception_fid_mnist.json")

  def load_range(samples):  # median (highest) of the samples taken every 10 s
    return f"{sorted(samples)[len(samples) // 2]:.1f} ({max(samples):.1f})" if samples else "–"

  rows = [[f"features, batch {speed['batch_size']}, warm", "–",
           f"{speed['seconds_per_image']:.3f}", f"{100 * speed['share_of_peak']:.0f}",
           f"{speed['load_average'][0]:.1f}"]]
  cold, cached = fid["cold"], fid["cached_test_statistics"]
  peak_gflops = max(fid["matmul_peak_gflops"])
  # Images whose features each command computed: both sides cold, one side cached.
  for label, run, count in (
      ("`gan_jax.fid`, both sides computed", cold,
       cold["result"]["num_real"] + cold["result"]["num_fake"]),
      ("`gan_jax.fid`, test side cached", cached, cached["result"]["num_fake"])):
    seconds_per_image = run["seconds"] / count
    rows.append([f"{label}: FID {run['result']['fid']:.2f}", f"{run['seconds']:.0f}",
                 f"{seconds_per_image:.3f}",
                 f"{100 * fid['gflop_per_image'] / seconds_per_image / peak_gflops:.0f}",
                 load_range(run["load_average_samples"])])
  return markdown(["Inception-v3 on MNIST (2-core CPU)", "seconds", "s/image",
                   "% of matmul peak", "load average: median (max)"], rows, "lrrrr")


def pod_rehearsal_table() -> str:
  r = load(f"{EXPERIMENTS}/pod_rehearsal.json")
  rows = [[t["pattern"], str(t["signalled_after_logged_step"]),
           "hung" if t["hung"] else str(t["returncode"]),
           ", ".join(f"{p}: {s}" for p, s in sorted(t["announced_stop_steps"].items())),
           str(t["latest_checkpoint"]),
           f"{t['seconds_after_signal']:.1f}",
           "hung" if t.get("relaunch_hung") else
           f"{t.get('relaunch_returncode')} at step {t.get('relaunch_final_step')}"]
          for t in r["trials"]]
  plain = r["plain_run"]
  rows.append(["none (to the end)", "–", str(plain["returncode"]), "–",
               str(plain["final_step"]), f"{plain['seconds']:.1f} (whole run)", "–"])
  return markdown(["signal", "sent after step", "exit", "stop step announced by process",
                   "latest checkpoint", "seconds to exit", "relaunch +5 steps"], rows,
                  "lrrlrrl") + (f"\n\n{r['launches']} launches, {r['hangs']} hangs, "
                                f"{r['failures']} failures.")


def seeds_table() -> str:
  results = load(f"{BENCHMARKS}/seeds.json")
  seed_maps = {c["step"]["seed_map"] for c in results["cases"].values()}
  rows = []
  for name, c in results["cases"].items():
    step, n = c["step"], c["num_seeds"]
    one, many = step["seeds_1"], step[f"seeds_{n}_{step['seed_map']}"]
    rows.append([name, str(n), thousands(c["num_train_steps"]),
                 f"{c['job_seconds']:.0f}", f"{sum(c['single_seconds']):.0f}",
                 f"{c['speedup']:.1f}×",
                 " / ".join(f"{step[key]['seconds_per_step'] * 1e3:.1f}" for key in
                            ("seeds_1", f"seeds_{n}_vmap", f"seeds_{n}_unrolled")),
                 f"{one['share_of_peak']:.0%} / {many['share_of_peak']:.0%}",
                 f"{one['cores_busy']:.1f} / {many['cores_busy']:.1f}",
                 f"{c['load_before'][0]:.1f} / {c['load_after'][0]:.1f}"])
  return markdown(["case", "seeds N", "steps", "one job (s)", "one run per seed (s)",
                   "speed-up", "step ms: 1 seed / N vmapped / N unrolled",
                   "matmul peak, 1 / N", "cores busy, 1 / N", "load average before / after"],
                  rows, "lrrrrrrrrr") + (f"\n\n{results['machine']['cpu']}, "
                                        f"{results['machine']['cpus']} cores; the job's seed map: "
                                        f"{', '.join(sorted(seed_maps))}.")


# gan_jax.backend's CPU library fusion choices, as the precision table names them.
CPU_KERNELS = {"none": "XLA's own", "dots": "YNNPACK dots", "xla_default": "YNNPACK (XLA's default)"}


def cpu_label(cpu: dict) -> str:
  extensions = [name for key, name in (("avx512_bf16", "AVX512_BF16"), ("amx_bf16", "AMX-BF16"))
                if cpu[key]]
  return f"{cpu['model']} ({', '.join(extensions) or 'no bf16 extensions'})"


def precision_ring8_table(results: Optional[dict] = None) -> str:
  results = results or load(f"{EXPERIMENTS}/precision_ring8.json")
  rows = []
  for machine in results["machines"]:
    for dtype, runs in machine["runs"].items():
      quality = [r["high_quality_fraction"] for r in runs]
      mean, se = mean_and_standard_error(quality)
      rows.append([cpu_label(machine["cpu"]), CPU_KERNELS[machine["cpu_library_fusions"]], dtype, seed_range([r["seed"] for r in runs]),
                   thousands(machine["num_train_steps"]),
                   f"{sum(r['modes'] == 8 for r in runs)}/{len(runs)}",
                   format_mean_se(mean, se, ".3f"), f"{min(quality):.3f}",
                   " ".join(f"{q:.2f}" for q in quality)])
  return markdown(["CPU", "kernels", "compute", "seeds", "steps", "seeds with 8/8 modes",
                   "high-quality fraction", "lowest", "per seed"], rows, "llllrrrrl")

TABLES: dict[str, Callable[[], str]] = {
    "glance": glance_table,
    "classifiers": classifiers_table,
    "mixtures": mixtures_table,
    "precision_ring8": precision_ring8_table,
    "gan_vs_vae": gan_vs_vae_table,
    "emoji": emoji_table,
    "mnist_losses": mnist_losses_table,
    "stacked_mnist": stacked_mnist_table,
    "dcgan_sweep": dcgan_sweep_table,
    "dcgan_long": dcgan_long_table,
    "dcgan_recipe": dcgan_recipe_table,
    "step_suite": step_suite_table,
    "step_suite_devices2": step_suite_devices2_table,
    "step_suite_library_kernels": step_suite_library_kernels_table,
    "machine": machine_table,
    "pipeline": pipeline_table,
    "h200": h200_table,
    "evaluation": evaluation_table,
    "seeds": seeds_table,
    "inception": inception_table,
    "pod_rehearsal": pod_rehearsal_table,
}

MARKED = re.compile(r"(<!-- report:(?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- /report:(?P=name) -->)",
                    re.DOTALL)


def rebuild(text: str, source: str) -> tuple[str, list[str]]:
  """`text` with every marked table rebuilt, and the names of tables that changed."""
  changed = []

  def replace(match):
    name = match["name"]
    if name not in TABLES:
      raise ReportError(f"{source}: unknown table {name!r}; known: {', '.join(TABLES)}")
    body = TABLES[name]() + "\n"
    if body != match["body"]:
      changed.append(name)
    return match[1] + body + match[4]

  return MARKED.sub(replace, text), changed


def main(argv: Optional[list[str]] = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--check", action="store_true",
                      help="change nothing; exit 1 if a README table differs from its files")
  args = parser.parse_args(argv)
  stale = []
  try:
    for readme in READMES:
      path = os.path.join(REPO_ROOT, readme)
      with open(path) as f:
        text = f.read()
      new_text, changed = rebuild(text, readme)
      stale += [f"{readme}: {name}" for name in changed]
      if changed and not args.check:
        with open(path, "w") as f:
          f.write(new_text)
  except (ReportError, OSError, KeyError) as error:
    print(f"report: {error}", file=sys.stderr)
    return 2
  if args.check and stale:
    print("tables differ from their result files (run `python -m experiments.report`): "
          + ", ".join(stale), file=sys.stderr)
    return 1
  if not args.check:
    print("rebuilt: " + (", ".join(stale) or "nothing changed"))
  return 0


if __name__ == "__main__":
  sys.exit(main())
