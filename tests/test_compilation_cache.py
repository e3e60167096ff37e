"""gan_jax.compilation_cache: where the cache lives and which programs it keeps."""

import jax

from gan_jax import compilation_cache

THRESHOLD = "jax_persistent_cache_min_compile_time_secs"


def test_cache_dir_and_threshold_follow_the_environment(monkeypatch, tmp_path):
  before = getattr(jax.config, THRESHOLD), jax.config.jax_compilation_cache_dir
  try:
    monkeypatch.setenv(compilation_cache.CACHE_ENV, str(tmp_path))
    monkeypatch.delenv("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", raising=False)
    assert compilation_cache.enable() == str(tmp_path)
    assert getattr(jax.config, THRESHOLD) == 0.5  # the runs' default
    jax.config.update(THRESHOLD, 0.0)
    monkeypatch.setenv("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
    compilation_cache.enable()
    assert getattr(jax.config, THRESHOLD) == 0.0  # JAX's own setting is left alone
  finally:
    jax.config.update(THRESHOLD, before[0])
    jax.config.update("jax_compilation_cache_dir", before[1])
