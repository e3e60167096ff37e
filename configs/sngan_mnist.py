"""SN-GAN ResNet pair (Miyato et al. 2018) on MNIST resized to 32x32, at a
width a 2-core CPU trains: hinge loss, spectral norm in D, Adam(2e-4, 0, 0.9)
decayed linearly to 0. Measured here: 4000 steps at width 16 in 22 minutes
(about 3 steps/s), classifier-FID 151 on 1000 samples; at width 32 a step
costs about 3x more."""

from configs import dcgan_mnist_classic, default
from gan_jax.models import DISCRIMINATORS, GENERATORS, module_config


def get_config(arg=None):
  c = dcgan_mnist_classic.get_config()
  c.dataset.resolution = 32
  c.latent_dim = 128
  c.generator = module_config(GENERATORS, "sngan_resnet", features=16)
  c.discriminator = module_config(DISCRIMINATORS, "sngan_resnet", features=16)
  c.loss.name = "hinge"
  for player in (c.optimizer.generator, c.optimizer.discriminator):
    player.learning_rate, player.b1, player.b2 = 2e-4, 0.0, 0.9
  c.num_train_steps = 4000
  for player in (c.optimizer.generator, c.optimizer.discriminator):
    player.decay_steps = 0  # follows num_train_steps (dcgan_mnist_classic's length is its own)
  if arg == "tiny":
    default.shrink(c)
    c.batch_size = 8
    c.generator.features = c.discriminator.features = 8
    c.eval.num_samples = 16
  return c
