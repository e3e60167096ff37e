"""DCGAN on Stacked MNIST (28x28x3, 1000 modes; PacGAN, Lin et al. 2018).

Prepare the data once with `python -m gan_jax.prepare --dataset=stacked_mnist`
(it prepares MNIST first). The networks and optimiser are the main job's
(configs/dcgan_mnist.py) with three colour channels. Every evaluation
classifies each channel of 26,000 samples with the committed MNIST
classifier and reports the modes covered of 1000 and KL(generated ||
uniform), PacGAN's protocol. `pack_size` m > 1 turns on PacGAN: D judges m
samples concatenated along the channels.

Packing is on by default. In experiments/stacked_mnist.py (README table)
it gave 993 modes and KL 0.299 at 20,000 steps, against 994 and 0.391
without; 45,000 steps (KL 0.302) and batch 128 for 30,000 steps (KL 0.296)
were no better, so the default keeps the cheapest (about 30 minutes on one
idle core).
"""

from configs import dcgan_mnist


def get_config(arg=None):
  c = dcgan_mnist.get_config(arg)
  c.dataset.name = "stacked_mnist"
  c.pack_size = 2
  if arg != "tiny":
    c.num_train_steps = 20_000
    for player in (c.optimizer.generator, c.optimizer.discriminator):
      player.decay_steps = c.num_train_steps
    c.eval_every_steps = 5000
    c.checkpoint_every_steps = 5000
    c.eval.num_samples = 26_000
  return c
