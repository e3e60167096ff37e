"""Every registered model family keeps the written contract
(`gan_jax.model_family.ModelFamily`), checked by tracing, never compiling."""

import pytest

from configs import ring8, vae_mnist, ae_mnist
from gan_jax.families import FAMILIES, build_family
from gan_jax.family_check import check_contract
from gan_jax.run import resolved_dataset

# A tiny config of each registered family; a family registered without one
# here fails the test below until it is added.
CONFIGS = {"gan": ring8, "vae": vae_mnist, "autoencoder": ae_mnist}


@pytest.mark.parametrize("name", FAMILIES.names())
def test_registered_family_keeps_the_contract(name):
  assert name in CONFIGS, f"add a config for family '{name}' to CONFIGS"
  config = CONFIGS[name].get_config("tiny")
  check_contract(build_family(config, resolved_dataset(config).example_shape), config)


def test_the_contract_check_can_fail():
  config = ring8.get_config("tiny")
  family = build_family(config, (2,))

  class Renamed(type(family)):
    sampling_player = "critic"

  broken = Renamed(**{f: getattr(family, f) for f in family.__dataclass_fields__})
  with pytest.raises(AssertionError, match="sampling_player"):
    check_contract(broken, config)
