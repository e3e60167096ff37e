"""configs/dcgan_emoji.py's recipe at dcgan_mnist_classic's width (32 features at the
first layer instead of 64) and half the steps (10,000, the rate decayed over
them): about an hour on a 2-core CPU, where the full config takes six to
seven. experiments/emoji.py trains and scores either.
"""

from configs import dcgan_emoji


def get_config(arg=None):
  c = dcgan_emoji.get_config(arg)
  if arg == "tiny":
    return c
  c.num_train_steps = 10_000
  c.generator.base_features = 32
  c.discriminator.base_features = 32
  c.eval_every_steps = 2500
  return c
