"""DCGAN on Fashion-MNIST (28x28x1): the dcgan_mnist recipe on the Debian
IDX files (`apt-get install dataset-fashion-mnist`, then
`python -m gan_jax.prepare --dataset=fashion_mnist`)."""

from configs import dcgan_mnist


def get_config(arg=None):
  c = dcgan_mnist.get_config(arg)
  c.dataset.name = "fashion_mnist"
  return c
