"""5x5 grid of Gaussians (sigma 0.05), the VEEGAN/PacGAN benchmark."""

from configs import default


def get_config(arg=None):
  c = default.get_config()
  c.dataset.name = "grid25"
  c.num_train_steps = 10_000
  if arg == "tiny":
    default.shrink(c)
  return c
