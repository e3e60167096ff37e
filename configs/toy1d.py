"""The explainers' toy GAN: real data N(10, 4); G(z) = (z + theta1) * theta2.

The generator starts at theta1 = 3, theta2 = 1, i.e. N(3, 1); a small MLP
discriminator plays against it. At the optimum theta1 * theta2 = 10 and
|theta2| = 2. theta1 and theta2 are logged at every evaluation.
"""

from configs import default
from gan_jax.models import DISCRIMINATORS, GENERATORS, module_config


def get_config(arg=None):
  c = default.get_config()
  c.dataset.name = "normal1d"
  c.latent_dim = 1
  c.generator = module_config(GENERATORS, "affine_noise", theta1_init=3.0, theta2_init=1.0)
  c.discriminator = module_config(DISCRIMINATORS, "mlp", hidden_units=64, num_hidden_layers=2,
                                  random_bias_init=True)
  c.batch_size = 256
  c.num_train_steps = 6000
  c.optimizer.generator.learning_rate = 3e-3
  c.optimizer.discriminator.learning_rate = 3e-3
  c.eval_every_steps = 1000
  c.checkpoint_every_steps = 1000
  if arg == "tiny":
    default.shrink(c)
  return c
