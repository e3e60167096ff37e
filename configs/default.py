"""Defaults shared by every config; variants import this and change fields.

Every config takes an optional argument: `--config=configs/X.py:tiny` shrinks
it to a few seconds of CPU work (what the tests run). The entries of models,
losses and regularisers come from their registries, so a component registered
before the config is read (`--import=module`) has its options here.
"""

from ml_collections import ConfigDict

from gan_jax.losses import loss_config
from gan_jax.models import DISCRIMINATORS, GENERATORS, module_config
from gan_jax.regularizers import regularizer_config


def optimizer(learning_rate=1e-4, b1=0.5, b2=0.999):
  return ConfigDict(dict(name="adam", learning_rate=learning_rate, b1=b1, b2=b2, eps=1e-8,
                         weight_decay=0.0, schedule="constant",
                         decay_steps=0,  # 0: a decaying schedule lasts num_train_steps
                         grad_clip_norm=0.0))


def get_config(arg=None):
  c = ConfigDict()
  c.seed = 0
  # > 1: train seeds seed .. seed+num_seeds-1 as one job (gan_jax.seeds);
  # shared_data_order: every seed reads the first seed's data order.
  c.num_seeds = 1
  c.shared_data_order = False
  c.family = "gan"
  # Modules of your own imported before the config is read (--import=a,b).
  c.plugins = ""
  c.dataset = ConfigDict(dict(name="ring8", data_dir=""))
  c.batch_size = 256
  c.num_train_steps = 10_000
  c.latent_dim = 2
  c.generator = module_config(GENERATORS, "mlp")
  c.discriminator = module_config(DISCRIMINATORS, "mlp")
  c.loss = loss_config("non_saturating")
  # One entry per registered regulariser; a weight of 0 switches it off.
  c.regularizers = regularizer_config()
  c.num_classes = 0  # > 0: class-conditional G and D
  # InfoGAN's categorical code (unconditional models): categories > 0 conditions
  # G on argmax(z[:categories]), which D's head Q learns to predict (gan_jax.gan).
  c.latent_code = ConfigDict(dict(categories=0, weight=1.0))
  # DiffAugment (Zhao et al. 2020) on every D input, e.g. "color,translation,cutout".
  c.augment = ConfigDict(dict(policy=""))
  # Generator EMA; sampling and evaluation use it when decay > 0.
  c.ema = ConfigDict(dict(decay=0.0, start_step=0))
  c.n_critic = 1
  # "bfloat16": forward passes in bf16, parameters and optimizer state in f32.
  c.compute_dtype = "float32"
  c.pack_size = 1
  # True: D judges each real and fake batch in one pass, so batch norm in D
  # normalises both with shared statistics; the generator update then passes
  # the real batch too. Without batch-dependent layers, the same function.
  c.joint_discriminator_batch = False
  c.weight_clip = 0.0
  c.optimizer = ConfigDict(dict(generator=optimizer(), discriminator=optimizer()))
  c.log_every_steps = 100
  c.eval_every_steps = 1000
  c.checkpoint_every_steps = 1000
  c.keep_checkpoints = 3
  c.eval = ConfigDict(dict(num_samples=2500, seed=0))
  # A JAX profiler trace of steps start_step+1 .. start_step+num_steps in
  # <workdir>/profile; num_steps=0: off.
  c.profile = ConfigDict(dict(start_step=0, num_steps=0))
  c.allow_config_change = False
  # True: refuse to resume on code (commit, local changes, plugins) other than
  # the last launch's; False: say so in one line and resume.
  c.require_same_code = False
  if arg == "tiny":
    shrink(c)
  return c


def shrink(c):
  """A few seconds of CPU work. Schedules keep the full run's length: a
  shrunk run trains with the rates of the full run's first steps."""
  for player in c.optimizer.values():
    if player.schedule != "constant" and not player.decay_steps:
      player.decay_steps = c.num_train_steps
  c.batch_size = 32
  c.num_train_steps = 20
  c.log_every_steps = 5
  c.eval_every_steps = 10
  c.checkpoint_every_steps = 10
  c.eval.num_samples = 500
  return c
