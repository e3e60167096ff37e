"""Class-conditional SN-GAN with a projection discriminator on CIFAR-10
(cGAN-pd, Miyato & Koyama 2018): conditional batch norm in G, projection
head in D; otherwise sngan_cifar10."""

from configs import sngan_cifar10


def get_config(arg=None):
  c = sngan_cifar10.get_config(arg)
  c.num_classes = 10
  return c
