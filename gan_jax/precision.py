"""Mixed precision: compute in bfloat16, keep parameters and optimizer state in float32.

`config.compute_dtype` names the dtype the models compute in. With
"bfloat16", each forward pass casts the float32 parameters and the floating
inputs to bfloat16, and casts the outputs back to float32, so losses,
gradients (through the cast), optimizer updates, batch-norm statistics
(flax reduces them in float32) and EMA weights all stay float32. This is the
usual recipe for accelerators with bf16 matrix units; on CPUs it is mostly
slower, and exists there for the tests.
"""

from __future__ import annotations

from typing import Any, Optional

import jax
import jax.numpy as jnp

from gan_jax.registry import ConfigError

PyTree = Any

COMPUTE_DTYPES = {"float32": None, "bfloat16": jnp.bfloat16}


def compute_dtype(config) -> Optional[Any]:
  """The dtype `config.compute_dtype` names; None for plain float32."""
  name = config.get("compute_dtype", "float32")
  if name not in COMPUTE_DTYPES:
    raise ConfigError(f"Unknown compute_dtype '{name}'; valid: {', '.join(COMPUTE_DTYPES)}.")
  return COMPUTE_DTYPES[name]


def _is_float(x) -> bool:
  return isinstance(x, (jax.Array, jnp.ndarray)) and jnp.issubdtype(x.dtype, jnp.floating)


def cast_floats(tree: PyTree, dtype) -> PyTree:
  """Floating leaves of `tree` cast to `dtype` (ints, bools and None untouched)."""
  if dtype is None:
    return tree
  return jax.tree.map(lambda x: x.astype(dtype) if _is_float(x) else x, tree)


def outputs_to_float32(tree: PyTree, compute_dtype) -> PyTree:
  """A forward pass's outputs back in float32 when it ran in `compute_dtype`."""
  return tree if compute_dtype is None else cast_floats(tree, jnp.float32)
