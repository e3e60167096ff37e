"""Mixed precision: compute in bfloat16 where it is safe, keep the rest float32.

`config.compute_dtype` names the dtype the hidden layers compute in. Models
take it as flax's `dtype` field: parameters are stored in float32 and each
layer casts its inputs and weights to `dtype` when it runs, so gradients,
optimizer state, batch-norm moments and EMA weights stay float32.

Some layers decide precision-critical values and always compute in float32
(`BOUNDARY_DTYPE`), as mixed-precision practice has it:
* the generator's output layer, whose result is the sample: bfloat16's 8-bit
  significand spaces values near 1 by 2^-8 to 2^-7, on the scale of the
  ring-8 mixture's sigma = 0.01;
* the discriminator's input layer, which must resolve the data at full
  precision (the first layer is where real and fake samples differ least);
* the discriminator's logit (and projection), which the losses read; losses
  and the encoder's posterior heads are float32 too.

With float32 compute every layer runs in float32 exactly as with `dtype=None`.
bfloat16 suits accelerators with bf16 matrix units; on CPUs it is slower.
"""

from __future__ import annotations

from typing import Any, Optional

import jax.numpy as jnp

from gan_jax.registry import ConfigError

COMPUTE_DTYPES = {"float32": None, "bfloat16": jnp.bfloat16}

# The dtype of the precision-critical layers listed above, whatever the config.
BOUNDARY_DTYPE = jnp.float32


def compute_dtype(config) -> Optional[Any]:
  """The dtype `config.compute_dtype` names; None for plain float32."""
  name = config.get("compute_dtype", "float32")
  if name not in COMPUTE_DTYPES:
    raise ConfigError(f"Unknown compute_dtype '{name}'; valid: {', '.join(COMPUTE_DTYPES)}.")
  return COMPUTE_DTYPES[name]
