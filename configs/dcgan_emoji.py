"""DCGAN on the Noto colour emoji (64x64x3, 3,458 training images): a real
colour dataset that can be had offline. Prepare it once with
`python -m gan_jax.prepare --dataset=emoji` (npm pack; see gan_jax/data/emoji.py).

The MNIST DCGAN's recipe (non-saturating loss, Adam(2e-4, 0.5) decayed
linearly, batch norm in D, a generator EMA) at 64 px, with DiffAugment's
colour, translation and cutout on every image D sees (Zhao et al. 2020 made
it for sets this small: a few thousand images). Sample quality is scored
with the standard Inception FID/KID against the 328 test emoji; turn the
in-training Inception metrics on with eval.inception_metrics=True (on by
default on GPU/TPU only).
"""

from ml_collections import ConfigDict

from configs import default


def get_config(arg=None):
  c = default.get_config()
  c.dataset.name = "emoji"
  c.dataset.resolution = 0  # native 64x64
  c.dataset.preprocessing = "symmetric"
  c.batch_size = 64
  c.num_train_steps = 20_000
  c.latent_dim = 128
  c.generator = ConfigDict(dict(name="dcgan", base_features=64, kernel_size=4,
                                conv_transpose="phase"))
  c.discriminator = ConfigDict(dict(name="dcgan", base_features=64, kernel_size=4,
                                    batch_norm=True, spectral_norm=False, conv="phase"))
  c.augment.policy = "color,translation,cutout"
  c.loss.name = "non_saturating"
  for player in (c.optimizer.generator, c.optimizer.discriminator):
    player.learning_rate = 2e-4
    player.b1 = 0.5
    player.schedule = "linear_decay"
    player.decay_steps = c.num_train_steps
  c.ema = ConfigDict(dict(decay=0.999, start_step=1000))
  c.log_every_steps = 100
  c.eval_every_steps = 5000
  c.checkpoint_every_steps = 2000
  c.eval.num_samples = 328  # the test split: FID against all of it
  c.eval.inception_metrics = "auto"
  if arg == "tiny":
    default.shrink(c)
    c.batch_size = 8
    c.generator.base_features = 8
    c.discriminator.base_features = 8
    c.ema.start_step = 5
    c.eval.num_samples = 16
    for player in (c.optimizer.generator, c.optimizer.discriminator):
      player.decay_steps = c.num_train_steps
  return c
