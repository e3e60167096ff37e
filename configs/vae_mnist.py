"""Convolutional VAE on dynamically binarised MNIST (the acceptance config).

Training images are re-binarised every time they are drawn; the test set is
binarised once with a fixed seed. Bernoulli likelihood, 32-d latent, beta 1:
the reported `test_negative_elbo` is in nats, comparable with Kingma & Welling
style conv VAEs (roughly 85-95 nats).
"""

from ml_collections import ConfigDict

from configs import default
from gan_jax.models import module_config
from gan_jax.models.autoencoder import DECODERS, ENCODERS


def get_config(arg=None):
  c = default.get_config()
  c.family = "vae"
  c.dataset.name = "mnist"
  c.dataset.preprocessing = "dynamic_binarize"
  c.batch_size = 128
  c.num_train_steps = 8_000
  c.latent_dim = 32
  del c.generator, c.discriminator, c.loss, c.regularizers
  del c.n_critic, c.pack_size, c.weight_clip, c.num_classes, c.augment, c.ema
  c.encoder = module_config(ENCODERS, "conv", features=(32, 64), kernel_size=3,
                            hidden_units=256)
  c.decoder = module_config(DECODERS, "conv", features=(32, 64), kernel_size=3,
                            hidden_units=256)
  c.autoencoder = ConfigDict(dict(likelihood="bernoulli", beta=1.0, gaussian_variance=1.0,
                                  learn_variance=False, iwae_samples=100))
  c.optimizer = ConfigDict(dict(autoencoder=default.optimizer(learning_rate=1e-3, b1=0.9)))
  c.optimizer.autoencoder.schedule = "cosine"
  c.log_every_steps = 200
  c.eval_every_steps = 1000
  c.checkpoint_every_steps = 1000
  # In-training evaluation: the whole test set, one-sample ELBO (the final
  # `python -m gan_jax.evaluate` adds the k=100 IWAE bound).
  c.eval = ConfigDict(dict(num_samples=1000, seed=0, iwae_samples=1, num_test_examples=0))
  if arg == "tiny":
    shrink(c)
  return c


def shrink(c):
  default.shrink(c)
  c.encoder.features = (8, 8)
  c.encoder.hidden_units = 32
  c.decoder.features = (8, 8)
  c.decoder.hidden_units = 32
  c.eval.num_test_examples = 500
  c.eval.num_samples = 16
  c.optimizer.autoencoder.decay_steps = c.num_train_steps
  return c
