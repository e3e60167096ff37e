"""gan_jax: reproducible, data-parallel GANs and VAEs in JAX/Flax."""

__version__ = "0.1.0"
