"""Generator and discriminator architectures, registered by name.

Every generator maps latents `z` of shape (batch, latent_dim) to samples of
shape (batch, *output_shape); every discriminator maps samples to one raw
output per example, shape (batch,). Both take `train` (batch-norm mode).
Batch-norm layers average their moments over `axis_name`
(`gan_jax.sharding.DATA_AXIS`), so they see the global batch.

A module's options are its dataclass fields with defaults: registering it
declares them, and `module_config` turns them into its config entry. To add
an architecture, register it from any module imported before the config is
read (`--import=your_module` on the command line).
"""

from __future__ import annotations

import dataclasses

import flax.linen as nn

from ml_collections import ConfigDict

from gan_jax import backend
from gan_jax.registry import ConfigError, Registry, check_options

GENERATORS: Registry[type[nn.Module]] = Registry("generator")
DISCRIMINATORS: Registry[type[nn.Module]] = Registry("discriminator")

# Fields the families set from the rest of the config, never from a model's
# own config entry.
FAMILY_SET_FIELDS = frozenset({"parent", "name", "dtype", "axis_name", "output_shape",
                               "num_classes", "code_categories", "latent_dim",
                               "variational"})
# Kernel forms: chosen per platform by gan_jax.backend (the fields' None), or
# set by a benchmark or test building the module; never config.
BACKEND_SET_FIELDS = frozenset({backend.CONV, backend.CONV_TRANSPOSE})


def declared_options(cls) -> dict:
  """A module's configurable fields and their defaults."""
  return {f.name: f.default for f in dataclasses.fields(cls)
          if f.name not in FAMILY_SET_FIELDS | BACKEND_SET_FIELDS
          and f.default is not dataclasses.MISSING}


def module_config(registry: Registry, name: str, **overrides) -> ConfigDict:
  """A model's config entry: its name and every declared option, defaults
  replaced by `overrides`."""
  declared = declared_options(registry.get(name))
  check_options(f"{registry.kind} '{name}'", set(overrides), set(declared))
  return ConfigDict(dict(name=name, **{**declared, **overrides}))


def module_options(module_config) -> dict:
  """The options in a model's config entry. Lists (a JSON round trip, a
  command-line override) become tuples, which keeps modules hashable."""
  return {k: tuple(v) if isinstance(v, list) else v
          for k, v in module_config.to_dict().items() if k != "name"}


def _left_from_another_module(registry: Registry, key: str, value) -> bool:
  """An option another registered module declares, at that module's default:
  what a config keeps after its model name is switched; it sets nothing."""
  value = tuple(value) if isinstance(value, list) else value
  return any(declared_options(registry.get(n)).get(key, dataclasses.MISSING) == value
             for n in registry.names())


def build_module(registry: Registry, name: str, options: dict, *, compute_dtype=None,
                 **fixed) -> nn.Module:
  """Instantiates a registered module, naming the valid options on a typo.

  A `compute_dtype` other than None (float32) goes to the module's `dtype`
  field (flax's compute dtype; see gan_jax.precision)."""
  cls = registry.get(name)
  fields = ({f.name for f in dataclasses.fields(cls)} - {"parent", "name", "dtype"}
            - BACKEND_SET_FIELDS)
  if compute_dtype is not None:
    if "dtype" not in {f.name for f in dataclasses.fields(cls)}:
      raise ConfigError(f"{registry.kind} '{name}' computes in float32 only (it has no "
                        f"dtype field); set compute_dtype=float32.")
    fixed = {**fixed, "dtype": compute_dtype}
  options = {k: v for k, v in options.items()
             if k in fields or not _left_from_another_module(registry, k, v)}
  check_options(f"{registry.kind} '{name}'", set(options), fields - set(fixed))
  return cls(**fixed, **options)


# Importing the architecture modules fills the registries.
from gan_jax.models import mlp, toy, dcgan, sngan  # noqa: E402,F401
