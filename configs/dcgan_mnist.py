"""DCGAN on MNIST (28x28x1), the README's main job: about 10 minutes of
training on a 2-core CPU. Prepare the data once with
`python -m gan_jax.prepare --dataset=mnist`.

The recipe issue #24's sweep chose (experiments/dcgan_mnist_sweep.py,
results in experiments/README.md), from configs/dcgan_mnist_classic.py's
networks, batch and EMA:
* spectral norm in D instead of batch norm, with the hinge loss (SN-GAN), and
  StyleGAN's minibatch standard deviation as one more feature of D: the digits
  come out evenly (class KL 0.02 against 0.14);
* InfoGAN's categorical code with 10 categories (gan_jax.gan): G is
  conditioned on argmax(z[:10]) as cdcgan_mnist's G is on a label, and a head
  Q on D's features learns to read the code back. No labels are used; the
  code lets one smooth G draw ten separate clusters, which lifts precision
  and lowers FID most of all;
* Adam(4e-4, 0.5) held constant, for as many steps as fit the 10 minutes.
Three seeds score classifier-FID 25 (10,000 samples; classic: 104) with
precision 0.54, in 8-9.5 minutes of training on a 2-core AMD EPYC.
"""

from configs import dcgan_mnist_classic

NUM_TRAIN_STEPS = 20_000


def get_config(arg=None):
  c = dcgan_mnist_classic.get_config(arg)
  c.discriminator.batch_norm = False
  c.discriminator.spectral_norm = True
  c.discriminator.minibatch_stddev = 4
  c.loss.name = "hinge"
  c.latent_code.categories = 10
  c.generator.label_embedding_dim = 16
  for player in (c.optimizer.generator, c.optimizer.discriminator):
    player.learning_rate = 4e-4
    player.schedule = "constant"
    player.decay_steps = 0
  if arg == "tiny":
    c.latent_code.categories = 4
    return c
  c.num_train_steps = NUM_TRAIN_STEPS
  c.eval_every_steps = 4000
  c.checkpoint_every_steps = 4000
  return c
