"""Ring of 8 Gaussians (sigma 0.01), the VEEGAN/PacGAN benchmark."""

from configs import default


def get_config(arg=None):
  c = default.get_config()
  c.dataset.name = "ring8"
  c.num_train_steps = 10_000
  if arg == "tiny":
    default.shrink(c)
  return c
