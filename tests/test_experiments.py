"""The Stacked MNIST experiment's variants name real config fields, and the
config's default is the variant the README calls the best
(DEFAULT_VARIANT)."""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from configs import dcgan_stacked_mnist  # noqa: E402
from experiments import stacked_mnist  # noqa: E402


def apply_override(config, argument: str):
  """Applies one `--config.a.b=value` the way absl's config flags would for
  the scalar fields these variants set; unknown fields raise KeyError."""
  assert argument.startswith("--config."), argument
  path, value = argument[len("--config."):].split("=", 1)
  *parents, field = path.split(".")
  node = config
  for name in parents:
    node = node[name]
  current = node[field]  # KeyError for a field the config lacks
  if isinstance(current, bool):
    assert value in ("True", "False"), argument
    node[field] = value == "True"
  else:
    node[field] = type(current)(value)


@pytest.mark.parametrize("variant", sorted(stacked_mnist.VARIANTS))
def test_every_override_names_a_config_field_of_its_type(variant):
  config = dcgan_stacked_mnist.get_config()
  overrides, steps = stacked_mnist.VARIANTS[variant]
  for argument in overrides:
    apply_override(config, argument)
  assert steps is None or steps > 0


def test_apply_override_rejects_an_unknown_field():
  with pytest.raises(KeyError):
    apply_override(dcgan_stacked_mnist.get_config(), "--config.generator.base_featurez=8")


def test_the_config_default_is_the_default_variant():
  default = dcgan_stacked_mnist.get_config()
  config = dcgan_stacked_mnist.get_config()
  overrides, steps = stacked_mnist.VARIANTS[stacked_mnist.DEFAULT_VARIANT]
  for argument in overrides:
    apply_override(config, argument)
  assert steps is None
  assert config.to_dict() == default.to_dict()
  # ... and a variant that changes something is seen to.
  apply_override(config, stacked_mnist.NARROW_D)
  assert config.to_dict() != default.to_dict()
