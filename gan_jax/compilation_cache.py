"""JAX's persistent compilation cache, on by default.

Compiled programs are kept in $GAN_JAX_COMPILATION_CACHE, else
~/.cache/gan_jax/jax_compilation_cache, so a relaunch skips recompiling.
"""

from __future__ import annotations

import os
from typing import Optional

import jax

CACHE_ENV = "GAN_JAX_COMPILATION_CACHE"


def cache_dir() -> str:
  return os.environ.get(CACHE_ENV) or os.path.expanduser("~/.cache/gan_jax/jax_compilation_cache")


def enable() -> Optional[str]:
  """Turns the cache on; returns its directory, or None where it stays off.

  Programs compiled in under 0.5 s are not kept, unless JAX's own
  JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS sets another threshold.

  It stays off on a multi-process CPU cluster: there a program found in the
  cache on process 0 is compiled afresh on the others (only process 0 writes
  entries), and Gloo fails a collective whose processes arrive more than
  30 s apart, which a long compile on one process does."""
  if jax.process_count() > 1 and jax.default_backend() == "cpu":
    return None
  directory = cache_dir()
  jax.config.update("jax_compilation_cache_dir", directory)
  if "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS" not in os.environ:  # JAX's own setting
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
  return directory
