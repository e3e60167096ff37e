"""Choices that depend on the backend, not on the research: made here, per
platform, recorded in each launch's environment record (`environment-<step>.json`,
see `gan_jax.provenance`) beside the XLA flags, and never in `config.json`.

* Compiler options of the train step. XLA:CPU hands convolutions, matrix
  products and the fusions around them to the YNNPACK library by default; its
  convolution kernels made the DCGAN step 1.4-1.6x slower than XLA's own, which
  were also as fast as YNNPACK dots for the DCGAN and 1.34x faster for the 2-D
  MLP GAN (benchmarks/step_suite.py). So on CPU the step keeps every op on
  XLA's own kernels. $GAN_JAX_CPU_LIBRARY_FUSIONS (a key of
  `CPU_LIBRARY_FUSIONS`) overrides the choice, to compare a run's numerics
  on the library's kernels (experiments/precision_ring8.py).
* Kernel forms of the stride-2 (transposed) convolutions: "xla" (`nn.Conv`,
  `nn.ConvTranspose`) or "phase" (`gan_jax.models.transposed_conv`), the same
  function on the same parameters. The phase forms made the DCGAN step 2.5-2.9x
  faster on XLA:CPU; they were measured nowhere else, so other platforms
  compute with XLA's own. $GAN_JAX_KERNEL_FORMS ("xla" or "phase") overrides
  the choice for every kind, to time both forms or to trade the phase forms'
  speed for XLA's shorter traces and compiles (the test suite's short runs:
  a third of the image tests' CPU time).
* How the step maps a family's update over the seed axis (`num_seeds` > 1,
  `gan_jax.step`): "vmap" (one batched program) or "unrolled" (the update
  traced once per seed, in the same program). XLA:CPU ran vmap's batched
  convolutions at under a third of the unbatched rate: the classic DCGAN step
  with 3 seeds took 2.5x as long vmapped as unrolled (benchmarks/seeds.py),
  while the 2-D MLP GAN's took about 15 % less. So CPU unrolls, for the image
  models whose runs are long; other platforms, where one batched kernel keeps
  a device busier than several small ones, vmap. Unrolling makes the program,
  and its compile time, grow with the seed count. $GAN_JAX_SEED_MAP ("vmap" or "unrolled") overrides the choice.

Every choice here changes float round-off only: the same code, config, seed,
device count and kind, and XLA flags give bitwise the same run, and a run
resumed on another platform continues the same function.
"""

from __future__ import annotations

import os
from typing import Optional

import jax

from gan_jax.registry import ConfigError

# What XLA:CPU may give YNNPACK (`xla_cpu_experimental_ynn_fusion_type`): none,
# only matrix products, or XLA's default choice (None: the option left unset).
# The names are the benchmark's (`step_suite.py --cpu_library_fusions`).
CPU_LIBRARY_FUSIONS = {
    "none": "",
    "dots": "LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT",
    "xla_default": None,
}
CPU_LIBRARY_FUSIONS_CHOSEN = "none"
CPU_LIBRARY_FUSIONS_ENV = "GAN_JAX_CPU_LIBRARY_FUSIONS"

# The two kernel kinds a model may build, and their forms.
CONV = "conv"  # a stride-2 convolution (discriminators, encoders)
CONV_TRANSPOSE = "conv_transpose"  # a stride-2 transposed one (generators, decoders)
KERNEL_FORMS = ("xla", "phase")
# Platform -> the form of each kernel kind; platforms not listed use "xla".
CHOSEN_FORMS = {"cpu": {CONV: "phase", CONV_TRANSPOSE: "phase"}}
KERNEL_FORMS_ENV = "GAN_JAX_KERNEL_FORMS"

# How the step maps the update over seeds; platforms not listed use "vmap".
SEED_MAPS = ("vmap", "unrolled")
CHOSEN_SEED_MAPS = {"cpu": "unrolled"}
SEED_MAP_ENV = "GAN_JAX_SEED_MAP"


def _forced_choice(variable: str, valid, what: str) -> Optional[str]:
  """The choice the environment `variable` forces, if any; one of `valid`."""
  forced = os.environ.get(variable)
  if forced and forced not in valid:
    raise ConfigError(f"${variable}={forced!r} is no {what}; valid: {', '.join(valid)}.")
  return forced or None


def cpu_compiler_options(library_fusions: str) -> dict:
  """XLA:CPU compiler options handing YNNPACK `library_fusions`."""
  fusion_types = CPU_LIBRARY_FUSIONS[library_fusions]
  return {} if fusion_types is None else {"xla_cpu_experimental_ynn_fusion_type": fusion_types}


def cpu_library_fusions() -> str:
  """What XLA:CPU hands YNNPACK: the backend's choice unless the environment
  names another."""
  forced = _forced_choice(CPU_LIBRARY_FUSIONS_ENV, CPU_LIBRARY_FUSIONS, "library fusion choice")
  return forced or CPU_LIBRARY_FUSIONS_CHOSEN


def compiler_options(platform: str) -> dict:
  """The options every compilation of the step on `platform` gets."""
  return cpu_compiler_options(cpu_library_fusions()) if platform == "cpu" else {}


def mesh_platform(mesh) -> str:
  return mesh.devices.flat[0].platform


def kernel_form(kind: str, platform: Optional[str] = None) -> str:
  """The form of `kind` ("conv" or "conv_transpose") models compute with on
  `platform` (default: JAX's default backend, whose devices the step's mesh
  holds; a model traced for other devices only runs at another speed)."""
  forced = _forced_choice(KERNEL_FORMS_ENV, KERNEL_FORMS, "kernel form")
  if forced:
    return forced
  platform = platform or jax.default_backend()
  return CHOSEN_FORMS.get(platform, {}).get(kind, "xla")


def seed_map(platform: str) -> str:
  """How the step on `platform` maps the update over the seed axis."""
  forced = _forced_choice(SEED_MAP_ENV, SEED_MAPS, "seed map")
  return forced or CHOSEN_SEED_MAPS.get(platform, "vmap")


def record(platform: Optional[str] = None) -> dict:
  """The choices for `platform` (default: JAX's default backend), for the
  environment record."""
  platform = platform or jax.default_backend()
  return {
      "platform": platform,
      "compiler_options": compiler_options(platform),
      "kernel_forms": {kind: kernel_form(kind, platform) for kind in (CONV, CONV_TRANSPOSE)},
      "seed_map": seed_map(platform),
  }
