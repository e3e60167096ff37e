"""Every train-step benchmark in one command: a JSON file and a Markdown table.

    python benchmarks/step_suite.py [--cases=dcgan_mnist_b64,ring8_b256] [--cpu_devices=2]
        [--pipeline_batch_sizes=64,256] [--windows=5] [--window_seconds=1]
        [--output=benchmarks/results/step_suite.json]

Cases (a config at one batch size, fed one fixed batch of random data):
  dcgan_mnist_b64, dcgan_mnist_b256  configs/dcgan_mnist_classic.py (the main
      job's networks before issue #24 added Q and spectral norm), with each
      convolution implementation: "xla" (nn.ConvTranspose in G, nn.Conv in D)
      and "phase" (gan_jax.models.transposed_conv's PhaseConvTranspose and
      PhaseGradientConv), set on the built models whatever gan_jax.backend
      would choose on this platform.
  sngan_cifar10_b64  the SN-GAN ResNet on 32x32x3 arrays (CIFAR-10 is not
      available offline), hinge loss, narrower than the paper's by default
      (--sngan_features) to fit the suite's few minutes on a CPU.
  cdcgan_mnist_b64, sngan_mnist_b64  configs/cdcgan_mnist.py and
      configs/sngan_mnist.py as they are.
  ring8_b256  configs/ring8.py, the 2-D MLP GAN, with two D passes per update
      and with one over real and fake together ("xla/joint").
  sngan_cifar10_full_b256, sngan_cifar10_full_b1024  configs/sngan_cifar10.py
      unchanged (n_dis = 5, widths 256/128), in float32 and with
      compute_dtype=bfloat16; accelerators only (run by default there).
Plus the MNIST input pipeline alone, at each of --pipeline_batch_sizes.

On accelerators the matmul peak is measured in float32 and in bfloat16, and
each variant is also given as a fraction of the bfloat16 peak.

Per variant: compile time (lower + compile of the step), steps/s and
examples/s (median over timed windows after warm-up; examples are real
examples consumed, batch_size x n_critic per step), and the FLOP rate as a
fraction of the float32 matmul peak measured in the same process. The FLOPs
are XLA's cost analysis of the reference ("xla") variant's step, one number
per architecture, so a reformulation that does more (or less) arithmetic is
ranked by time alone. A case's variants are timed in alternating windows, so
a load change on a shared machine hits both alike; their speedup is the
median of the per-window ratios.

The matmul peak is measured before every round of timed windows, and a
variant's fraction of peak is the median over windows of its rate against
the peak just before: on this shared CPU the peak drifts by up to a third
within one run (137 and 176 GFLOP/s before and after one run), and a single
peak for the whole run moved the fractions with it. The peaks before and after
all cases are recorded too.

Memory: XLA's own buffer sizes for the step (arguments + outputs - aliased +
temporaries), which are the step's and nothing else's; and the device's peak
bytes in use where it reports them (accelerators), else the process's peak
RSS over the variant's warm-up steps. Both of the latter are whole-process
figures: the allocator keeps memory freed by earlier cases. The elementwise
memory bandwidth by array size is measured too: on the 2-core CPU of the README
it falls about tenfold once the data outgrows the 32 MiB L3 cache, which is
why the batch-256 DCGAN step (about 66 MiB of XLA temporaries) runs at a lower
fraction of peak than the batch-64 one (about 17 MiB).
"""

from __future__ import annotations

import dataclasses
import json
import os
import resource
import statistics
import sys
import time
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags
from ml_collections import ConfigDict

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from configs import cdcgan_mnist, dcgan_mnist_classic, ring8, sngan_cifar10, sngan_mnist  # noqa: E402
from gan_jax import backend, provenance  # noqa: E402
from gan_jax.data import DataNotPreparedError, dataset_spec, default_data_dir  # noqa: E402
from gan_jax.data.pipeline import InputPipeline, load_split  # noqa: E402
from gan_jax.families import build_family  # noqa: E402
from gan_jax.sharding import make_mesh, replicated  # noqa: E402
from gan_jax.step import make_train_step  # noqa: E402

REFERENCE = "xla"
# A variant is "<conv implementation>" (the kernel form of every model that
# has a strided (transposed) convolution), optionally followed by "/<compute_dtype>"
# and "/joint" (one D pass over real and fake: config.joint_discriminator_batch).
BF16 = "bfloat16"
JOINT = "joint"
MIB = 2 ** 20

FLAGS = flags.FLAGS
flags.DEFINE_list("cases", None, "Cases to run (default: all).")
flags.DEFINE_list("pipeline_batch_sizes", ["64", "256"],
                  "MNIST input-pipeline batch sizes; empty to skip.")
flags.DEFINE_integer("windows", 5, "Timed windows per variant.")
flags.DEFINE_float("window_seconds", 1.0, "Length of a timed window (at least one step).")
flags.DEFINE_integer("warmup_steps", 1, "Untimed steps after compiling.")
flags.DEFINE_list("sngan_features", ["32", "32"],
                  "SN-GAN generator and discriminator widths of sngan_cifar10_b64 "
                  "(the paper's, which the *_full cases use: 256,128).")
flags.DEFINE_string("output", "benchmarks/results/step_suite.json", "JSON output.")
flags.DEFINE_enum("cpu_library_fusions", backend.CPU_LIBRARY_FUSIONS_CHOSEN,
                  list(backend.CPU_LIBRARY_FUSIONS),
                  "Ops XLA:CPU hands to YNNPACK (gan_jax.backend.CPU_LIBRARY_FUSIONS); "
                  "'xla_default' measures XLA's default.")
flags.DEFINE_integer("cpu_devices", 0, "On a CPU: split it into this many XLA devices "
                     "(jax_num_cpu_devices) and run every step data-parallel over them; "
                     "0 keeps JAX's default, one device using every core.")
flags.DEFINE_string("rescore", None, "Instead of timing: recompute the model FLOPs and "
                    "peak fractions of this earlier report (e.g. one measured on another "
                    "machine) and write it to --output.")


def dcgan_config(batch_size: int) -> ConfigDict:
  c = dcgan_mnist_classic.get_config()
  c.batch_size = batch_size
  return c


def sngan_config() -> ConfigDict:
  """SN-GAN's CIFAR-10 setup (Miyato et al. 2018) at --sngan_features widths,
  with one D update per step (the paper: five): a size this CPU can time."""
  g_features, d_features = map(int, FLAGS.sngan_features)
  c = sngan_cifar10.get_config()
  c.n_critic = 1
  c.generator.features, c.discriminator.features = g_features, d_features
  return c


def sngan_full_config(batch_size: int) -> ConfigDict:
  """configs/sngan_cifar10.py as it is (n_dis = 5, widths 256/128), at a batch size."""
  c = sngan_cifar10.get_config()
  c.batch_size = batch_size
  return c


@dataclasses.dataclass(frozen=True)
class Case:
  name: str
  make_config: Callable[[], ConfigDict]
  variants: tuple[str, ...] = (REFERENCE,)
  accelerator_only: bool = False  # too big to time on a CPU


CASES = {case.name: case for case in (
    Case("dcgan_mnist_b64", lambda: dcgan_config(64), (REFERENCE, "phase")),
    Case("dcgan_mnist_b256", lambda: dcgan_config(256), (REFERENCE, "phase")),
    Case("cdcgan_mnist_b64", cdcgan_mnist.get_config, (REFERENCE, "phase")),
    Case("sngan_mnist_b64", sngan_mnist.get_config),
    Case("sngan_cifar10_b64", sngan_config),
    # The MLP D has no batch-dependent layer: the joint pass is the same function.
    Case("ring8_b256", ring8.get_config, (REFERENCE, f"{REFERENCE}/{JOINT}")),
    Case("sngan_cifar10_full_b256", lambda: sngan_full_config(256),
         (REFERENCE, f"{REFERENCE}/{BF16}"), accelerator_only=True),
    Case("sngan_cifar10_full_b1024", lambda: sngan_full_config(1024),
         (REFERENCE, f"{REFERENCE}/{BF16}"), accelerator_only=True),
)}


def apply_variant(config: ConfigDict, variant: str) -> ConfigDict:
  """The config with the variant's compute dtype and discriminator passes."""
  _, *options = variant.split("/")
  config.joint_discriminator_batch = JOINT in options
  dtypes = [option for option in options if option != JOINT]
  config.compute_dtype = dtypes[0] if dtypes else "float32"
  return config


def fastest_seconds(function: Callable, argument, repeats: int) -> float:
  """The fastest of `repeats` timed calls, after one untimed (compiling) call."""
  function(argument).block_until_ready()
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    function(argument).block_until_ready()
    times.append(time.perf_counter() - start)
  return min(times)


def matmul_peak_flops(dtype=jnp.float32, n: int = 2048, repeats: int = 10) -> float:
  """FLOP/s of the fastest of `repeats` n x n matmuls in `dtype`."""
  return 2 * n ** 3 / fastest_seconds(jax.jit(lambda x: x @ x), jnp.ones((n, n), dtype),
                                      repeats)


def measure_peaks() -> dict:
  """Matmul peaks in float32 and, on accelerators, bfloat16 (bigger matrices
  there, to fill the device)."""
  if jax.default_backend() == "cpu":
    return {"float32": matmul_peak_flops()}
  return {"float32": matmul_peak_flops(jnp.float32, 8192),
          BF16: matmul_peak_flops(jnp.bfloat16, 8192)}


def memory_bandwidth(sizes_mib=(4, 16, 64, 256), repeats: int = 10) -> dict:
  """GB/s (bytes read + written) of an elementwise pass over float32 arrays of
  each size in MiB: how fast memory-bound fusions run when their data fits in
  the CPU's caches and when it must come from DRAM."""
  scale_and_shift = jax.jit(lambda x: x * 1.0001 + 1.0)
  return {size: 2 * size * MIB / 1e9 / fastest_seconds(
      scale_and_shift, jnp.ones((size * MIB // 4,), jnp.float32), repeats)
          for size in sizes_mib}


def reset_peak_rss() -> bool:
  """Resets Linux's per-process RSS high-water mark; False where it cannot."""
  try:
    with open("/proc/self/clear_refs", "w") as f:
      f.write("5")
    return True
  except OSError:
    return False


def peak_rss_bytes() -> int:
  try:
    with open("/proc/self/status") as f:
      for line in f:
        if line.startswith("VmHWM:"):
          return int(line.split()[1]) * 1024
  except OSError:
    pass
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def kernel_forms(family, form: str) -> dict:
  """{field of the family: its model with every strided (transposed)
  convolution in `form`}, for the models that have one."""
  models = {}
  for field in dataclasses.fields(family):
    model = getattr(family, field.name)
    options = {f.name for f in dataclasses.fields(model)} if dataclasses.is_dataclass(
        model) else set()
    kinds = options & {backend.CONV, backend.CONV_TRANSPOSE}
    if kinds:
      models[field.name] = model.clone(**{kind: form for kind in kinds})
  return models


def build_variant(config: ConfigDict, variant: str):
  """(config, family, mesh, batches) of a config's variant; the batches are
  random values in the data's range: throughput does not depend on them."""
  config = apply_variant(config, variant)
  spec = dataset_spec(config)
  family = build_family(config, spec.example_shape)
  family = dataclasses.replace(family, **kernel_forms(family, variant.split("/")[0]))
  shape = (family.batches_per_step, config.batch_size, *spec.example_shape)
  rng = np.random.default_rng(0)
  batches = {"x": rng.uniform(-1, 1, shape).astype(np.float32)}
  if config.get("num_classes", 0):
    batches["label"] = rng.integers(0, config.num_classes, shape[:2]).astype(np.int32)
  return config, family, make_mesh(), batches


def model_flops(config: ConfigDict) -> float:
  """The reference formulation's FLOPs per step: XLA's cost analysis of the
  lowered, not yet compiled, float32 "xla" step. It counts the model's
  arithmetic the same way on every backend; a compiled step's cost analysis
  does not (on GPUs it leaves out the convolutions handed to cuDNN)."""
  config, family, mesh, batches = build_variant(config, REFERENCE)
  state = jax.eval_shape(lambda: family.create_state(config))
  per_device = make_train_step(family, mesh).lower(state, batches).cost_analysis()["flops"]
  # The shard_map step's cost analysis counts one device's share of the batch.
  return float(per_device) * mesh.devices.size


class CompiledStep:
  """One variant's compiled step, with its state and a fixed random batch."""

  def __init__(self, config: ConfigDict, variant: str):
    config, family, mesh, self.batches = build_variant(config, variant)
    self.state = jax.jit(lambda: family.create_state(config),
                         out_shardings=replicated(mesh))()
    start = time.perf_counter()
    options = (backend.cpu_compiler_options(FLAGS.cpu_library_fusions)
               if backend.mesh_platform(mesh) == "cpu" else {})
    self.compiled = make_train_step(family, mesh, compiler_options=options).lower(
        self.state, self.batches).compile()
    self.compile_seconds = time.perf_counter() - start
    self.examples_per_step = config.batch_size * family.batches_per_step
    # {"generator": "phase", ...}: the kernel form of each model that has one.
    self.kernel_forms = {name: variant.split("/")[0] for name in kernel_forms(family, "xla")}
    self.flops = float(self.compiled.cost_analysis().get("flops", 0.0))
    buffers = self.compiled.memory_analysis()
    self.xla_memory = {
        name: getattr(buffers, f"{name}_size_in_bytes", None)
        for name in ("argument", "output", "alias", "temp", "generated_code")}

  def run(self, num_steps: int) -> float:
    """Runs `num_steps` steps; returns their wall-clock seconds."""
    start = time.perf_counter()
    for _ in range(num_steps):
      self.state, metrics = self.compiled(self.state, self.batches)
    jax.block_until_ready(metrics)
    return time.perf_counter() - start


def step_bytes(buffers: dict):
  if None in buffers.values():
    return None
  return buffers["argument"] + buffers["output"] - buffers["alias"] + buffers["temp"]


def device_peak_bytes():
  stats = jax.devices()[0].memory_stats()
  return None if stats is None else stats.get("peak_bytes_in_use")


def benchmark_case(case: Case) -> dict:
  steps, results = {}, {}
  for variant in case.variants:
    step = CompiledStep(case.make_config(), variant)
    rss_case_scope = reset_peak_rss()
    step.run(FLAGS.warmup_steps)
    seconds_per_step = step.run(1)
    steps[variant] = step
    results[variant] = {
        "compile_seconds": step.compile_seconds, "executed_flops": step.flops,
        "kernel_forms": step.kernel_forms,
        "steps_per_window": max(1, round(FLAGS.window_seconds / seconds_per_step)),
        "memory": {"xla_step_bytes": step_bytes(step.xla_memory),
                   "xla_buffer_bytes": step.xla_memory,
                   "device_peak_bytes": device_peak_bytes(),
                   "peak_rss_bytes": peak_rss_bytes(),
                   "peak_rss_scope": "warmup" if rss_case_scope else "process lifetime"},
        "rates": []}
  window_peaks = []
  for _ in range(FLAGS.windows):
    window_peaks.append(measure_peaks())
    for variant, step in steps.items():
      count = results[variant]["steps_per_window"]
      results[variant]["rates"].append(count / step.run(count))
  reference_flops = model_flops(case.make_config())
  for variant, result in results.items():
    steps_per_sec = statistics.median(result["rates"])
    result.update(steps_per_sec=steps_per_sec,
                  examples_per_sec=steps_per_sec * steps[variant].examples_per_step,
                  reference_flops=reference_flops)
  config = case.make_config()
  summary = {"batch_size": config.batch_size, "n_critic": config.n_critic,
             "generator": config.generator.to_dict(),
             "discriminator": config.discriminator.to_dict(), "variants": results,
             "window_matmul_peaks": window_peaks}
  for variant in case.variants[1:]:
    ratios = [new / old for new, old in zip(results[variant]["rates"],
                                            results[REFERENCE]["rates"])]
    summary[f"speedup_{variant}_vs_{REFERENCE}"] = statistics.median(ratios)
  return summary


def benchmark_pipeline(batch_size: int) -> dict:
  """The MNIST input pipeline alone: batches it delivers, as device arrays."""
  config = dcgan_config(batch_size)
  spec = dataset_spec(config)
  data_dir = config.dataset.data_dir or default_data_dir()
  try:
    arrays = load_split(spec, "train", data_dir)
  except DataNotPreparedError as error:
    return {"skipped": str(error)}
  pipeline = InputPipeline(arrays, spec.preprocess, global_batch_size=batch_size,
                           batches_per_step=1, seed=0, mesh=make_mesh())
  batches = pipeline.iterate(0)
  try:
    for _ in range(FLAGS.warmup_steps + 1):
      jax.block_until_ready(next(batches))
    rates = []
    for _ in range(FLAGS.windows):
      count, start = 0, time.perf_counter()
      while time.perf_counter() - start < FLAGS.window_seconds:
        jax.block_until_ready(next(batches))
        count += 1
      rates.append(count / (time.perf_counter() - start))
  finally:
    batches.close()
  batches_per_sec = statistics.median(rates)
  return {"batches_per_sec": batches_per_sec, "examples_per_sec": batches_per_sec * batch_size,
          "rates": rates}


def window_peak_range(report: dict) -> str:
  peaks = [peaks["float32"] for case in report["cases"].values()
           for peaks in case.get("window_matmul_peaks", [])]
  return f" (float32 {min(peaks) / 1e12:.3g}-{max(peaks) / 1e12:.3g} TFLOP/s)" if peaks else ""


def markdown(report: dict) -> str:
  peaks = ", ".join(f"{dtype} {flops / 1e12:.3g} TFLOP/s"
                    for dtype, flops in report["matmul_peak_flops_by_dtype"].items())
  lines = [
      f"matmul peak: {peaks} ({report['device_kind']}, {report['environment']['cpu']}, "
      f"{report['backend']}); fractions are against the peak measured before each "
      f"timed window{window_peak_range(report)}", "",
      *([] if "memory_bandwidth_gb_per_s_by_mib" not in report else [
          "elementwise memory bandwidth (read + write) by array size: " + ", ".join(
              f"{size} MiB {rate:.1f} GB/s"
              for size, rate in report["memory_bandwidth_gb_per_s_by_mib"].items()), ""]),
      "| case | variant | batch | steps/s | examples/s | compile s | ref GFLOP/step "
      "| % of f32 matmul peak | % of bf16 peak | XLA step MiB | process peak MiB | speedup |",
      "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
  for name, case in report["cases"].items():
    for variant, r in case["variants"].items():
      memory = r["memory"]
      peak = memory["device_peak_bytes"] or memory["peak_rss_bytes"]
      step = memory["xla_step_bytes"]
      speedup = case.get(f"speedup_{variant}_vs_{REFERENCE}")
      lines.append(
          f"| {name} | {variant} | {case['batch_size']} | {r['steps_per_sec']:.2f} "
          f"| {r['examples_per_sec']:.0f} | {r['compile_seconds']:.1f} "
          f"| {r['reference_flops'] / 1e9:.2f} | {100 * r['fraction_of_matmul_peak']:.1f} "
          f"| {100 * r.get('fraction_of_bf16_matmul_peak', float('nan')):.1f} "
          f"| {'' if step is None else f'{step / MIB:.1f}'} | {peak / MIB:.0f} "
          f"| {'' if speedup is None else f'{speedup:.2f}x'} |")
  if report["pipeline"]:
    lines += ["", "| MNIST input pipeline, batch | batches/s | images/s |", "|---:|---:|---:|"]
    for batch_size, r in report["pipeline"].items():
      if "skipped" in r:
        lines.append(f"| {batch_size} | skipped: not prepared | |")
      else:
        lines.append(f"| {batch_size} | {r['batches_per_sec']:.1f} "
                     f"| {r['examples_per_sec']:.0f} |")
  return "\n".join(lines)


def add_fractions(report: dict) -> None:
  """Each variant's model FLOP rate as a fraction of the matmul peak: the
  median over windows of the window's rate against the peak measured just
  before it, so that a drift in the machine's speed cancels; the whole run's
  peak where a report has no per-window peaks (older reports)."""
  for case in report["cases"].values():
    window_peaks = case.get("window_matmul_peaks")
    for result in case["variants"].values():
      if window_peaks:
        pairs = list(zip(result["rates"], window_peaks))
      else:
        pairs = [(result["steps_per_sec"], report["matmul_peak_flops_by_dtype"])]
      for dtype, key in (("float32", "fraction_of_matmul_peak"),
                         (BF16, "fraction_of_bf16_matmul_peak")):
        if dtype in pairs[0][1]:
          result[key] = statistics.median(
              result["reference_flops"] * rate / peaks[dtype] for rate, peaks in pairs)


def rescore(path: str) -> dict:
  with open(path) as f:
    report = json.load(f)
  for name, case in report["cases"].items():
    flops = model_flops(CASES[name].make_config())
    for result in case["variants"].values():
      result["reference_flops"] = flops
  add_fractions(report)
  report["rescored"] = {"from": path, "environment": provenance.environment()}
  return report


def write(report: dict) -> None:
  os.makedirs(os.path.dirname(os.path.abspath(FLAGS.output)), exist_ok=True)
  with open(FLAGS.output, "w") as f:
    json.dump(report, f, indent=2)
  print(markdown(report))


def main(argv):
  del argv
  if FLAGS.rescore:
    write(rescore(FLAGS.rescore))
    return
  if FLAGS.cpu_devices:  # before anything starts JAX's backends
    jax.config.update("jax_num_cpu_devices", FLAGS.cpu_devices)
  on_cpu = jax.default_backend() == "cpu"
  names = FLAGS.cases or [n for n, c in CASES.items() if not (on_cpu and c.accelerator_only)]
  unknown = sorted(set(names) - set(CASES))
  if unknown:
    raise app.UsageError(f"Unknown case(s) {', '.join(unknown)}; valid: {', '.join(CASES)}.")
  start = time.perf_counter()
  peaks_before = measure_peaks()
  bandwidth = memory_bandwidth()
  cases = {}
  for name in names:
    cases[name] = benchmark_case(CASES[name])
    print(f"{name}: done after {time.perf_counter() - start:.0f} s", flush=True)
  peaks_after = measure_peaks()
  peaks = {dtype: max(peaks_before[dtype], peaks_after[dtype]) for dtype in peaks_before}
  report = {"backend": jax.default_backend(), "devices": len(jax.devices()),
            "device_kind": jax.devices()[0].device_kind,
            "environment": provenance.environment(), "matmul_peak_flops": peaks["float32"],
            "matmul_peak_flops_by_dtype": peaks,
            "matmul_peak_flops_before_after": [peaks_before, peaks_after],
            "memory_bandwidth_gb_per_s_by_mib": bandwidth,
            "cpu_library_fusions": FLAGS.cpu_library_fusions, "windows": FLAGS.windows,
            "window_seconds": FLAGS.window_seconds, "cases": cases, "pipeline": {}}
  for batch_size in map(int, FLAGS.pipeline_batch_sizes):
    report["pipeline"][batch_size] = benchmark_pipeline(batch_size)
  report["wall_seconds"] = time.perf_counter() - start
  add_fractions(report)
  write(report)


if __name__ == "__main__":
  app.run(main)
