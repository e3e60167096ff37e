"""Model families by name: each turns a config into a `step.ModelFamily`."""

from __future__ import annotations

from gan_jax.autoencoder import AutoencoderFamily
from gan_jax.gan import GANFamily
from gan_jax.registry import Registry

FAMILIES: Registry = Registry("model family")
FAMILIES.register("gan")(GANFamily.from_config)
# One class for both: `config.family` says whether the encoder is variational.
FAMILIES.register("autoencoder")(AutoencoderFamily.from_config)
FAMILIES.register("vae")(AutoencoderFamily.from_config)


def build_family(config, data_shape: tuple[int, ...]):
  return FAMILIES.get(config.family)(config, data_shape)
