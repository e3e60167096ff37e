"""Deterministic convolutional autoencoder on MNIST intensities in [0, 1]
(Bernoulli cross-entropy on grey levels, the usual choice for MNIST)."""

from configs import vae_mnist


def get_config(arg=None):
  c = vae_mnist.get_config()
  c.family = "autoencoder"
  c.dataset.preprocessing = "unit"
  c.num_train_steps = 10_000
  if arg == "tiny":
    vae_mnist.shrink(c)
  return c
