"""DCGAN on MNIST (28x28x1), the README's main job: about 10 minutes on a
2-core CPU. Prepare the data once with `python -m gan_jax.prepare --dataset=mnist`.

Non-saturating loss, Adam(2e-4, 0.5) for both players (Radford et al. 2016),
and a generator EMA used for sampling and evaluation.
"""

from ml_collections import ConfigDict

from configs import default


def get_config(arg=None):
  c = default.get_config()
  c.dataset.name = "mnist"
  c.dataset.resolution = 0  # native 28x28
  c.dataset.preprocessing = "symmetric"
  c.batch_size = 64
  c.num_train_steps = 3000
  c.latent_dim = 64
  c.generator = ConfigDict(dict(name="dcgan", base_features=32, kernel_size=4,
                                conv_transpose="phase"))
  c.discriminator = ConfigDict(dict(name="dcgan", base_features=32, kernel_size=4))
  c.loss.name = "non_saturating"
  for player in (c.optimizer.generator, c.optimizer.discriminator):
    player.learning_rate = 2e-4
    player.b1 = 0.5
  c.ema = ConfigDict(dict(decay=0.999, start_step=500))
  c.log_every_steps = 50
  c.eval_every_steps = 250
  c.checkpoint_every_steps = 500
  c.eval.num_samples = 1000
  if arg == "tiny":
    default.shrink(c)
    c.batch_size = 16
    c.generator.base_features = 8
    c.discriminator.base_features = 8
    c.ema.start_step = 5
    c.eval.num_samples = 64
  return c
