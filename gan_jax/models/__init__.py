"""Generator and discriminator architectures, registered by name.

Every generator maps latents `z` of shape (batch, latent_dim) to samples of
shape (batch, *output_shape); every discriminator maps samples to one raw
output per example, shape (batch,). Both take `train` (batch-norm mode).
Batch-norm layers average their moments over `axis_name`, the step's data
axis, so they see the global batch.
"""

from __future__ import annotations

import dataclasses

import flax.linen as nn

from gan_jax.registry import ConfigError, Registry

GENERATORS: Registry[type[nn.Module]] = Registry("generator")
DISCRIMINATORS: Registry[type[nn.Module]] = Registry("discriminator")

# The data-parallel mesh axis; models need it for cross-replica batch norm.
DATA_AXIS = "data"


def build_module(registry: Registry, name: str, options: dict, *, compute_dtype=None,
                 **fixed) -> nn.Module:
  """Instantiates a registered module, naming the valid options on a typo.

  A `compute_dtype` other than None (float32) goes to the module's `dtype`
  field (flax's compute dtype; see gan_jax.precision)."""
  cls = registry.get(name)
  fields = {f.name for f in dataclasses.fields(cls)} - {"parent", "name", "dtype"}
  if compute_dtype is not None:
    if "dtype" not in {f.name for f in dataclasses.fields(cls)}:
      raise ConfigError(f"{registry.kind} '{name}' computes in float32 only (it has no "
                        f"dtype field); set compute_dtype=float32.")
    fixed = {**fixed, "dtype": compute_dtype}
  unknown = sorted(set(options) - fields)
  if unknown:
    raise ConfigError(
        f"{registry.kind} '{name}' has no option(s) {', '.join(unknown)}. "
        f"Valid options: {', '.join(sorted(fields - set(fixed)))}.")
  return cls(**fixed, **options)


# Importing the architecture modules fills the registries.
from gan_jax.models import mlp, toy, dcgan, sngan  # noqa: E402,F401
