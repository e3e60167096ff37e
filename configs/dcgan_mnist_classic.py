"""DCGAN on MNIST (28x28x1) with the classic recipe: `dcgan_mnist`'s until
issue #24 replaced it, and still the base of the configs built on it
(cdcgan_mnist, dcgan_stacked_mnist, dcgan_emoji, sngan_mnist) and of
experiments/mnist_losses.py, so their published figures keep their meaning.
Prepare the data once with `python -m gan_jax.prepare --dataset=mnist`.

Non-saturating loss, Adam(2e-4, 0.5) for both players (Radford et al. 2016),
decayed linearly to 0 over the run, batch norm in D as in the paper, and a
generator EMA used for sampling and evaluation. Without D's batch norm, D
sat at chance from step ~1000 and the samples stayed malformed
(classifier-FID 134 against 110 at 3000 steps, on a GPU); the 6000 steps
with the decay bring it to about 104 (10,000 samples). It draws the digits
unevenly (1s and 4s rare, 9s common; experiments/README.md).
Gradient penalties assume a batch-independent D: set
discriminator.batch_norm=False with them.
"""

from ml_collections import ConfigDict

from configs import default
from gan_jax.models import DISCRIMINATORS, GENERATORS, module_config


def get_config(arg=None):
  c = default.get_config()
  c.dataset.name = "mnist"
  c.dataset.resolution = 0  # native 28x28
  c.dataset.preprocessing = "symmetric"
  c.batch_size = 64
  c.num_train_steps = 6000
  c.latent_dim = 64
  c.generator = module_config(GENERATORS, "dcgan", base_features=32, kernel_size=4)
  c.discriminator = module_config(DISCRIMINATORS, "dcgan", base_features=32, kernel_size=4,
                                  batch_norm=True, spectral_norm=False)
  c.loss.name = "non_saturating"
  for player in (c.optimizer.generator, c.optimizer.discriminator):
    player.learning_rate = 2e-4
    player.b1 = 0.5
    player.schedule = "linear_decay"
    player.decay_steps = c.num_train_steps
  c.ema = ConfigDict(dict(decay=0.999, start_step=500))
  c.log_every_steps = 50
  c.eval_every_steps = 1000
  c.checkpoint_every_steps = 1000
  c.eval.num_samples = 1000
  if arg == "tiny":
    default.shrink(c)
    c.batch_size = 16
    c.generator.base_features = 8
    c.discriminator.base_features = 8
    c.ema.start_step = 5
    c.eval.num_samples = 64
    for player in (c.optimizer.generator, c.optimizer.discriminator):
      player.decay_steps = c.num_train_steps
  return c
