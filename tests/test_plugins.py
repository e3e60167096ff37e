"""Plugins, saved configs, code versions and the config listing, each alone
(the command-line path end to end is in test_extending_cli.py)."""

import json
import sys
import textwrap

import pytest

from configs import ring8
from gan_jax import code_version, config_schema, plugins, provenance, saved_config
from gan_jax.losses import ADVERSARIAL_LOSSES
from gan_jax.registry import ConfigError


def test_import_flags_are_read_in_order_without_repeats():
  argv = ["prog", "--import=a,b", "--config=x.py", "--import", "c", "--import=a"]
  assert plugins.in_argv(argv) == ["a", "b", "c"]
  assert plugins.split("a, b,,a") == ["a", "b"]


@pytest.fixture
def plugin_module(tmp_path, monkeypatch):
  (tmp_path / "my_test_loss.py").write_text(textwrap.dedent('''
      from gan_jax.losses import LossPair, register_loss

      @register_loss("my_test_loss", margin=2.0)
      def my_test_loss(d_real, d_fake, *, batch_mean, real_target, margin):
        return LossPair(batch_mean(margin - d_real), -batch_mean(d_fake))
  '''))
  monkeypatch.syspath_prepend(str(tmp_path))
  yield "my_test_loss"
  ADVERSARIAL_LOSSES._entries.pop("my_test_loss", None)
  sys.modules.pop("my_test_loss", None)


def test_a_saved_config_imports_its_plugins_and_fills_absent_keys(plugin_module, tmp_path):
  saved = provenance.config_to_dict(ring8.get_config())
  saved["plugins"] = plugin_module
  saved["loss"]["name"] = "my_test_loss"
  del saved["joint_discriminator_batch"], saved["regularizers"]["r1"]["every"]
  path = tmp_path / "config.json"
  path.write_text(json.dumps(saved))
  config = saved_config.get_config(str(path))
  assert "my_test_loss" in ADVERSARIAL_LOSSES
  assert config.loss.my_test_loss.margin == 2.0  # the plugin's declared default
  assert config.joint_discriminator_batch is False
  assert config.regularizers.r1.every == 1
  # Registered components the run does not name add nothing: its hash does
  # not depend on what the reading process imported.
  assert "gradient_penalty" in config.regularizers and "hinge" not in config.loss


def test_a_missing_plugin_is_one_line_naming_the_fix(tmp_path):
  with pytest.raises(ConfigError) as err:
    plugins.import_all(["no_such_module_here"], origin="run/config.json")
  message = str(err.value)
  assert "\n" not in message and "no_such_module_here" in message
  assert "run/config.json" in message and "PYTHONPATH" in message


def test_plugin_files_are_hashed(plugin_module):
  plugins.import_all([plugin_module])
  record = plugins.file_hashes([plugin_module])[plugin_module]
  assert record["file"].endswith("my_test_loss.py") and len(record["sha256"]) == 64


def test_code_version_names_the_commit_and_local_changes():
  code = code_version.describe()
  assert len(code["git_commit"]) == 40 and isinstance(code["git_dirty"], bool)
  same = {"code": code, "plugins": {"p": {"sha256": "1"}}}
  assert code_version.difference(same, same) is None
  moved = {"code": {**code, "git_commit": "0" * 40}, "plugins": {"p": {"sha256": "2"}}}
  line = code_version.difference(moved, same)
  assert "commit 000000000000 ->" in line and "plugin p changed" in line and "\n" not in line


def test_every_key_of_the_configs_is_described():
  for config in (ring8.get_config(),):
    listing = config_schema.show(provenance.config_to_dict(config))
    undescribed = [line for line in listing.splitlines() if "#" not in line]
    assert undescribed == []
  from configs import dcgan_mnist, vae_mnist
  for module in (dcgan_mnist, vae_mnist):
    flat = provenance.flatten(provenance.config_to_dict(module.get_config()))
    assert [k for k in flat if not config_schema.describe(k, provenance.config_to_dict(
        module.get_config()))] == []
