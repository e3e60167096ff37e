"""SN-GAN ResNet on CIFAR-10 at the paper's size (Miyato et al. 2018, Table 3
setting: hinge loss, n_dis = 5, Adam(2e-4, 0, 0.9), batch 64, G width 256,
D width 128). For accelerators; CIFAR-10 needs network to prepare."""

from ml_collections import ConfigDict

from configs import default
from gan_jax.models import DISCRIMINATORS, GENERATORS, module_config


def get_config(arg=None):
  c = default.get_config()
  c.dataset.name = "cifar10"
  c.batch_size = 64
  c.num_train_steps = 50_000
  c.latent_dim = 128
  c.generator = module_config(GENERATORS, "sngan_resnet", features=256)
  c.discriminator = module_config(DISCRIMINATORS, "sngan_resnet", features=128)
  c.loss.name = "hinge"
  c.n_critic = 5
  for player in (c.optimizer.generator, c.optimizer.discriminator):
    player.learning_rate, player.b1, player.b2 = 2e-4, 0.0, 0.9
    player.schedule = "linear_decay"
  c.ema = ConfigDict(dict(decay=0.9999, start_step=1000))
  c.eval_every_steps = 5000
  c.checkpoint_every_steps = 5000
  c.eval.num_samples = 10_000
  if arg == "tiny":
    default.shrink(c)
    c.batch_size = 8
    c.n_critic = 2
    c.generator.features = c.discriminator.features = 8
    c.eval.num_samples = 16
  return c
