"""How every entry point starts and ends: `cli.run(main)` in place of
`app.run(main)`.

A mistake the user can fix (a bad flag or config value, an unknown config
key or `:suffix`, a `UserError` raised anywhere below) ends the process with
exit status 2 and one line on stderr, `error: <message>`. `--verbose`, or
GAN_JAX_VERBOSE=1 in the environment, adds the traceback. Any other
exception is a bug and keeps its traceback.
"""

from __future__ import annotations

import difflib
import functools
import importlib.util
import os
import sys
import traceback
from typing import Callable, Optional

from absl import app, flags, logging

from gan_jax import plugins, storage
from gan_jax.errors import UserError

VERBOSE_ENV = "GAN_JAX_VERBOSE"
USER_ERROR_STATUS = 2
# The arguments every config in configs/ accepts after its path (`:tiny`).
CONFIG_ARGS = ("tiny",)
CONFIG_FLAG = "config"


def _verbose(argv: list[str]) -> bool:
  if os.environ.get(VERBOSE_ENV, "") not in ("", "0", "false", "False"):
    return True
  return any(a in ("--verbose", "--verbose=true", "--verbose=True", "--verbose=1")
             for a in argv)


def one_line(message: str) -> str:
  return " ".join(part.strip() for part in str(message).strip().splitlines() if part.strip())


def exit_on_user_error(error: BaseException, verbose: bool) -> None:
  """Prints `error` as one line (with its traceback when `verbose`), exits 2."""
  if verbose:
    traceback.print_exception(error)
  print(f"error: {one_line(error) or type(error).__name__}", file=sys.stderr)
  sys.exit(USER_ERROR_STATUS)


def _config_flag_value(argv: list[str]) -> Optional[str]:
  return _flag_value(argv, CONFIG_FLAG)


SAVED_CONFIG_MODULE = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                   "saved_config.py")


def _flag_value(argv: list[str], name: str) -> Optional[str]:
  for i, arg in enumerate(argv):
    if arg.startswith(f"--{name}="):
      return arg.split("=", 1)[1]
    if arg == f"--{name}" and i + 1 < len(argv):
      return argv[i + 1]
  return None


def recorded_plugins(workdir: Optional[str]) -> list[str]:
  """The plugins a workdir's config.json names (resume, evaluate, sample)."""
  import json

  if not workdir:
    return []
  try:
    path = storage.resolve(workdir, "workdir") / "config.json"
  except UserError:
    return []  # reported where the workdir is resolved
  if not path.is_file():
    return []
  try:
    return plugins.split(json.loads(path.read_text()).get("plugins", ""))
  except ValueError:
    return []  # reported where the config is read


def prepare(argv: list[str]) -> list[str]:
  """Before absl parses `argv`: imports the plugins (`--import` and those the
  workdir records), so that the config has their entries; reads a saved
  config.json given as `--config` (or `--rerun=WORKDIR`) through
  gan_jax/saved_config.py; makes `configs` importable for a config file in a
  repository's configs/ directory, wherever the command runs."""
  plugins.import_all(plugins.in_argv(argv))
  for flag in ("workdir", "rerun"):
    plugins.import_all(recorded_plugins(_flag_value(argv, flag)), origin=f"--{flag}")
  rerun = _flag_value(argv, "rerun")
  if rerun is not None and _config_flag_value(argv) is None:
    argv = [*argv, f"--{CONFIG_FLAG}={os.path.join(rerun, 'config.json')}"]
  prepared = []
  for arg in argv:
    if (arg.startswith(f"--{CONFIG_FLAG}=") and arg.endswith(".json")
        and SAVED_CONFIG_MODULE not in arg):
      arg = f"--{CONFIG_FLAG}={SAVED_CONFIG_MODULE}:{arg.split('=', 1)[1]}"
    prepared.append(arg)
  config_value = _config_flag_value(prepared)
  if config_value:
    directory = os.path.dirname(os.path.abspath(config_value.partition(":")[0]))
    if (os.path.basename(directory) == "configs"
        and os.path.isfile(os.path.join(directory, "__init__.py"))
        and os.path.dirname(directory) not in sys.path):
      sys.path.append(os.path.dirname(directory))
  return prepared


def check_config_argument(value: str) -> None:
  """`configs/x.py:arg`: the file exists and `arg` is one configs accept."""
  path, _, arg = value.partition(":")
  if not os.path.isfile(path):
    raise UserError(f"--{CONFIG_FLAG}: no config file {path}.")
  if path == SAVED_CONFIG_MODULE:
    if not storage.resolve(arg, "saved config").is_file():
      raise UserError(f"--{CONFIG_FLAG}: no saved config {arg}.")
    return
  if arg and arg not in CONFIG_ARGS:
    close = difflib.get_close_matches(arg, CONFIG_ARGS, n=1)
    hint = f" Did you mean ':{close[0]}'?" if close else ""
    raise UserError(f"--{CONFIG_FLAG}={value}: unknown argument ':{arg}'; configs accept "
                    f"{', '.join(':' + a for a in CONFIG_ARGS)} or nothing.{hint}")


def _config_keys(value: str) -> list[str]:
  """The dotted keys of the config file `value` (`path[:arg]`) names."""
  from gan_jax.provenance import config_to_dict, flatten

  path, _, arg = value.partition(":")
  spec = importlib.util.spec_from_file_location("gan_jax_cli_config", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  config = module.get_config(arg) if arg else module.get_config()
  keys = set()
  for key in flatten(config_to_dict(config)):
    parts = key.split(".")
    keys.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
  return sorted(keys)


def unknown_override(argv: list[str], value: str) -> Optional[str]:
  """A one-line message for the first `--config.KEY=` whose KEY the config
  lacks, with the closest existing key; None when every key exists."""
  keys = _config_keys(value)
  prefix = f"--{CONFIG_FLAG}."
  for arg in argv:
    if arg.startswith(prefix):
      key = arg[len(prefix):].split("=", 1)[0]
      if key not in keys:
        close = difflib.get_close_matches(key, keys, n=1, cutoff=0.6)
        hint = f" Did you mean --{CONFIG_FLAG}.{close[0]}?" if close else ""
        return f"--{CONFIG_FLAG}.{key}: the config has no key '{key}'.{hint}"
  return None


def parse_flags(argv: list[str], flag_values: flags.FlagValues = flags.FLAGS) -> list[str]:
  """absl's flag parsing, with every parse failure a user error."""
  verbose = _verbose(argv)
  try:
    argv = prepare(argv)
    config_value = _config_flag_value(argv) if CONFIG_FLAG in flag_values else None
    if config_value is not None:
      check_config_argument(config_value)
    try:
      return flag_values(argv)
    except (flags.Error, AttributeError, KeyError, TypeError, ValueError, OSError) as error:
      # The config flag reports an unknown `--config.KEY` in several ways.
      message = config_value and unknown_override(argv, config_value)
      raise UserError(message or one_line(error)) from error
  except UserError as error:
    exit_on_user_error(error, verbose)


def _guarded(main: Callable, argv: list[str]):
  if not flags.FLAGS["verbosity"].present:
    # Orbax and TFDS log routine steps at INFO, which would bury the one line.
    logging.set_verbosity(logging.WARNING)
  try:
    return main(argv)
  except (UserError, app.UsageError) as error:
    exit_on_user_error(error, _verbose(sys.argv))


def run(main: Callable) -> None:
  """`app.run(main)` with user errors reported as one line and exit status 2."""
  if "verbose" not in flags.FLAGS:
    flags.DEFINE_bool("verbose", False, "On a user error, print the traceback too "
                      f"(also: {VERBOSE_ENV}=1).")
  if plugins.FLAG not in flags.FLAGS:
    flags.DEFINE_multi_string(plugins.FLAG, [], "Modules of your own to import first "
                              "(module[,module]; repeatable); see gan_jax.plugins.")
  app.run(functools.partial(_guarded, main), flags_parser=parse_flags)
