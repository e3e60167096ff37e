"""JAX's persistent compilation cache, on by default.

Compiled programs are kept in $GAN_JAX_COMPILATION_CACHE, else
~/.cache/gan_jax/jax_compilation_cache, so a relaunch skips recompiling.
"""

from __future__ import annotations

import os

import jax

CACHE_ENV = "GAN_JAX_COMPILATION_CACHE"


def cache_dir() -> str:
  return os.environ.get(CACHE_ENV) or os.path.expanduser("~/.cache/gan_jax/jax_compilation_cache")


def enable() -> str:
  directory = cache_dir()
  jax.config.update("jax_compilation_cache_dir", directory)
  jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
  return directory
