"""The Stacked MNIST experiment's variants name real config fields, and the
config's default is the variant the README calls the best
(DEFAULT_VARIANT)."""

import os
import sys
from unittest import mock

import pytest
from absl import flags
from ml_collections import config_flags

from experiments import stacked_mnist

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def parsed_config(overrides):
  """The config that `gan_jax.main` would build from these overrides: the same
  absl config-file flag, parsed into a private FlagValues. (The flag reads its
  overrides from sys.argv, so that is what it is given.)"""
  flag_values = flags.FlagValues()
  config_flags.DEFINE_config_file("config", flag_values=flag_values, lock_config=True)
  argv = ["stacked_mnist", f"--config={os.path.join(REPO, stacked_mnist.CONFIG)}", *overrides]
  with mock.patch.object(sys, "argv", argv):
    flag_values(argv)
  return flag_values.config


@pytest.mark.parametrize("variant", sorted(stacked_mnist.VARIANTS))
def test_every_override_parses_into_the_config(variant):
  overrides, steps = stacked_mnist.VARIANTS[variant]
  config = parsed_config(overrides)
  assert config.pack_size >= 1
  assert steps is None or steps > 0


def test_an_override_of_an_unknown_field_is_rejected():
  with pytest.raises(Exception, match="base_featurez"):
    parsed_config(["--config.generator.base_featurez=8"])


def test_the_config_default_is_the_default_variant():
  default = parsed_config([])
  overrides, steps = stacked_mnist.VARIANTS[stacked_mnist.DEFAULT_VARIANT]
  assert steps is None
  assert parsed_config(overrides).to_dict() == default.to_dict()
  # ... and a variant that changes something is seen to.
  assert parsed_config([*overrides, stacked_mnist.NARROW_D]).to_dict() != default.to_dict()


@pytest.mark.parametrize("variant", sorted(stacked_mnist.VARIANTS))
def test_every_variant_names_what_the_default_has_changed(variant):
  """Changing the default's widths, rates or schedule must not change what an
  older row's variant trains: parsed on top of a different default, each
  variant gives the same config."""
  overrides, _ = stacked_mnist.VARIANTS[variant]
  other_default = ["--config.generator.base_features=16",
                   "--config.discriminator.base_features=16",
                   *stacked_mnist.both_players("learning_rate", "1e-5"),
                   *stacked_mnist.both_players("schedule", "cosine")]
  assert (parsed_config([*other_default, *overrides]).to_dict()
          == parsed_config(overrides).to_dict())


def test_a_stopped_mixture_run_is_not_recorded():
  from experiments import mixtures  # imports the training loop; nothing is compiled
  config = mixtures.CONFIGS["grid25"].get_config()
  config.num_train_steps = 100
  old_row = {"seed": 4, "step": 100, "num_train_steps": 100}
  runs = [{"seed": 3}, old_row]
  stopped = mixtures.train_and_record(runs, mixtures_config(config, 4, 1), "unused",
                                      train=lambda config, workdir: {"step": 68})
  assert stopped == (["seed 4 (stopped at step 68 of 100)"], False)  # the job stopped
  assert runs == [{"seed": 3}, old_row]
  # A finished rerun replaces the seed's row.
  finished = {"step": 100, "modes": 25}
  assert mixtures.train_and_record(runs, mixtures_config(config, 4, 1), "unused",
                                   train=lambda config, workdir: finished) == ([], True)
  assert [r["seed"] for r in runs] == [3, 4]
  assert runs[1]["modes"] == 25 and runs[1]["num_train_steps"] == 100
  # A job of three seeds: the diverged one (frozen) is left out, the others recorded.
  job = {"step": 100, "seeds": [{"seed": 4, "seed_index": 0, "modes": 24},
                                {"seed": 5, "seed_index": 1, "modes": 3,
                                 "diverged_at_step": 57},
                                {"seed": 6, "seed_index": 2, "modes": 23}]}
  assert mixtures.train_and_record(runs, mixtures_config(config, 4, 3), "unused",
                                   train=lambda config, workdir: job) == (
                                       ["seed 5 (stopped at step 57 of 100)"], True)
  assert [(r["seed"], r.get("modes")) for r in runs] == [(3, None), (4, 24), (6, 23)]
  assert runs[1]["step"] == 100 and "seed_index" not in runs[1]
  # Each row carries its job's wall-clock; `seconds` is that over the job's seeds.
  assert runs[1]["job_seeds"] == 3 and runs[1]["job_seconds"] == runs[2]["job_seconds"]
  assert runs[1]["seconds"] == pytest.approx(runs[1]["job_seconds"] / 3)


def mixtures_config(config, seed, num_seeds):
  config.seed, config.num_seeds = seed, num_seeds
  return config


def test_every_experiment_imports_without_defining_flags():
  """Run as `python -m experiments.NAME`: importable from the repository root
  with no path edits, and their flags only defined under __main__."""
  import importlib
  for name in ("mixtures", "mnist_losses", "gan_vs_vae", "stacked_mnist", "precision_ring8",
               "dcgan_mnist_sweep", "emoji", "fid_curve", "report", "summary", "sweep"):
    importlib.import_module(f"experiments.{name}")
  defined_by = flags.FLAGS.flags_by_module_dict()
  assert not [module for module in defined_by if module.startswith("experiments")]


def test_the_published_sweep_is_the_one_the_script_runs():
  from experiments import dcgan_mnist_sweep, report
  runs = report.load(dcgan_mnist_sweep.OUTPUT)["runs"]
  screened = {run["variant"]: run["command"] for run in runs.values() if run["stage"] == "screen"}
  assert screened and set(screened) <= set(dcgan_mnist_sweep.SCREEN)
  for name, command in screened.items():
    overrides = [*dcgan_mnist_sweep.OLD, *dcgan_mnist_sweep.SCREEN[name],
                 *dcgan_mnist_sweep.SCREEN_RUN]
    assert command.endswith(" ".join(overrides) + " --config.seed=0"), name


def test_recipe_table_gives_mean_and_standard_error_over_seeds():
  from experiments import report
  runs = {f"r{seed}": {"stage": "confirm", "variant": "new", "seed": seed, "steps": 20000,
                       "num_samples": 10000, "returncode": 0, "minutes": 9.5, "fid": fid,
                       "dataset": "mnist", "cores": 2, "floor_fid": 1.0,
                       "precision": 0.7,
                       "class_kl": 0.01, "min_class_share": 0.08, "max_class_share": 0.12}
          for seed, fid in enumerate([20.0, 22.0, 24.0])}
  table = report.dcgan_recipe_table({"runs": runs})
  # standard error of (20, 22, 24): sample sd 2 over sqrt(3)
  assert ("| `new` | mnist | 2 | 0–2 | 20,000 | 10,000 | 9.5 ± 0.0 | 22.0 ± 1.2 | 0.700 ± 0.000 |"
          in table) and table.rstrip().endswith("| 1.0 |")
  runs["r1"]["fid"] = None
  with pytest.raises(report.ReportError, match="no final evaluation"):
    report.dcgan_recipe_table({"runs": runs})


def test_the_loss_table_names_every_loss_the_script_runs():
  from experiments import mnist_losses, report
  prefixes = {mnist_losses.variant_name(loss, 0).rsplit("_s", 1)[0]
              for loss in mnist_losses.LOSSES}
  assert prefixes == set(report.MNIST_LOSS_LABELS)


def test_a_seed_job_evaluation_splits_into_one_run_per_seed():
  from experiments import mnist_losses
  from experiments.sweep import seed_evaluations
  row = {"step": 6000, "eval/fid": 5.0, "eval/fid/seed_0": 4.0, "eval/fid/seed_2": 6.0}
  assert seed_evaluations(row, 3) == [{"step": 6000, "eval/fid": 4.0}, None,
                                      {"step": 6000, "eval/fid": 6.0}]
  jobs = {mnist_losses.job_name(loss): {"eval": row, "seconds": 30.0, "returncode": 0}
          for loss in mnist_losses.LOSSES}
  runs = mnist_losses.per_seed_runs(jobs, 3)
  assert runs["hinge_s2"]["eval"] == {"step": 6000, "eval/fid": 6.0}
  assert runs["hinge_s1"]["eval"] is None and runs["hinge_s0"]["seconds"] == 10.0
