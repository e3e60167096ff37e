"""Convolutional VAE on Fashion-MNIST intensities in [0, 1] with a Gaussian
likelihood whose variance is learned. Needs `apt-get install
dataset-fashion-mnist` and `python -m gan_jax.prepare --dataset=fashion_mnist`."""

from configs import vae_mnist


def get_config(arg=None):
  c = vae_mnist.get_config()
  c.dataset.name = "fashion_mnist"
  c.dataset.preprocessing = "unit"
  c.autoencoder.likelihood = "gaussian"
  c.autoencoder.learn_variance = True
  if arg == "tiny":
    vae_mnist.shrink(c)
  return c
