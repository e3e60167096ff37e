"""What a saved `config.json` means: the values of keys it lacks, and the
values it computes with.

One rule decides what a key absent from an older `config.json` meant:

* entries that registries contribute (a model's options, a loss's options,
  every regulariser's entry) mean their registered defaults, for the
  component that config names: a regulariser it lacks was off (weight 0);
* other keys added after runs existed are listed in `ABSENT_MEANS`, at the
  value that computes what runs without them computed (which is not always
  today's default).

Keys older configs recorded that no longer configure anything are listed in
`RETIRED_KEYS`, with what they meant; reading a config drops them.

`complete(saved)` does both; resuming, evaluating and sampling read saved
configs through it, so adding a registered component or a listed key, or
retiring one, never stops an older workdir from working. A new key that is
neither must be added to `ABSENT_MEANS` (`tests/test_config_versions.py`
fails until it is).
"""

from __future__ import annotations

import copy
import functools
from typing import Any

from gan_jax import losses, regularizers
from gan_jax.models import DISCRIMINATORS, GENERATORS, declared_options
from gan_jax.models.autoencoder import DECODERS, ENCODERS

ABSENT_MEANS = {
    "plugins": "",
    "compute_dtype": "float32",
    "num_classes": 0,
    "augment.policy": "",
    "ema.decay": 0.0,
    "ema.start_step": 0,
    "joint_discriminator_batch": False,
    "num_seeds": 1,
    "shared_data_order": False,
    "latent_code.categories": 0,
    "latent_code.weight": 1.0,
}
# Backend choices older configs recorded (gan_jax.backend now makes them per
# platform and records them in environment-<step>.json). Each changed float
# round-off only: a run resumed with the backend's choice continues the same
# function, bitwise as before on CPU where it recorded the shipped configs'
# values ("none", "phase"). A model option is retired only for models that no
# longer declare it.
RETIRED_KEYS = {
    "cpu_library_fusions": "ops XLA:CPU handed to YNNPACK: none, dots or xla_default",
    "generator.conv_transpose": "form of G's transposed convolutions: xla or phase",
    "decoder.conv_transpose": "form of the decoder's transposed convolutions: xla or phase",
    "discriminator.conv": "form of D's strided convolutions: xla or phase",
}
# Config sections that name a registered model, and its registry.
MODEL_SECTIONS = {"generator": GENERATORS, "discriminator": DISCRIMINATORS,
                  "encoder": ENCODERS, "decoder": DECODERS}


def registered_defaults(config: dict, *, unused: bool = True) -> dict[str, Any]:
  """Dotted key -> default of every registry-contributed entry `config` can
  hold, for the components it names (unregistered names contribute none).
  `unused=False` leaves out the entries of losses and regularisers the
  config does not use or list, which depend on what happens to be imported."""
  defaults = {}
  for section, registry in MODEL_SECTIONS.items():
    name = config.get(section, {}).get("name")
    if name in registry:
      defaults.update({f"{section}.{k}": v
                       for k, v in declared_options(registry.get(name)).items()})
  if "loss" in config:
    used = [config["loss"].get("name")] + list(config["loss"])
    for name in losses.ADVERSARIAL_LOSSES.names() if unused else set(used) & set(
        losses.ADVERSARIAL_LOSSES.names()):
      for option, value in losses.ADVERSARIAL_LOSSES.get(name).options:
        defaults[f"loss.{name}.{option}"] = value
  if "regularizers" in config:
    for name, entry in regularizers.regularizer_config().items():
      if not unused and name not in config["regularizers"]:
        continue
      defaults.update({f"regularizers.{name}.{k}": v for k, v in entry.items()})
  return defaults


def _absent_meanings(config: dict, unused: bool) -> dict[str, Any]:
  return {**ABSENT_MEANS, **registered_defaults(config, unused=unused)}


def flatten(tree: dict, prefix: str = "") -> dict[str, Any]:
  """Nested dicts as one dict of dotted keys."""
  flat = {}
  for key, value in tree.items():
    name = f"{prefix}{key}"
    if isinstance(value, dict):
      flat.update(flatten(value, name + "."))
    else:
      flat[name] = value
  return flat


def _retired(config: dict, key: str) -> bool:
  """Whether `config`'s `key` is retired: listed, and if a model's option,
  of a registered model that no longer declares it."""
  section, _, option = key.rpartition(".")
  if key not in RETIRED_KEYS or section not in MODEL_SECTIONS:
    return key in RETIRED_KEYS
  registry, name = MODEL_SECTIONS[section], config.get(section, {}).get("name")
  return name in registry and option not in declared_options(registry.get(name))


def complete(saved: dict, *, unused: bool = True) -> dict:
  """`saved` without its retired keys, and with every absent key filled in
  with what its absence meant. `unused=False` (reading a run's config) adds
  no entries for losses and regularisers it does not name, so the result,
  and its hash, do not depend on which plugins the reading process imported."""
  filled = copy.deepcopy(saved)
  for key in RETIRED_KEYS:
    *parents, leaf = key.split(".")
    node = functools.reduce(lambda node, part: node.get(part, {}), parents, filled)
    if leaf in node and _retired(saved, key):
      del node[leaf]
  for key, value in _absent_meanings(saved, unused).items():
    *parents, leaf = key.split(".")
    node = filled
    for part in parents:
      node = node.setdefault(part, {})
    node.setdefault(leaf, list(value) if isinstance(value, tuple) else value)
  return filled


def effective(flat: dict[str, Any]) -> dict[str, Any]:
  """Flat config values as the run uses them: a decay schedule without an
  explicit length (decay_steps=0) lasts num_train_steps; a constant one has
  no length."""
  resolved = dict(flat)
  for key, value in flat.items():
    if key.startswith("optimizer.") and key.endswith(".decay_steps"):
      schedule = flat.get(key[:-len("decay_steps")] + "schedule", "constant")
      if schedule == "constant":
        resolved[key] = 0
      elif value == 0 and "num_train_steps" in flat:
        resolved[key] = flat["num_train_steps"]
  return resolved


# One line per key (`*`: any player or regulariser), for --show_config.
DESCRIPTIONS = {
    "seed": "run key PRNGKey(seed): initial parameters, every step's draws, data order",
    "num_seeds": "> 1: train seeds seed .. seed+num_seeds-1 as one job (gan_jax.seeds)",
    "shared_data_order": "a job of several seeds: every seed reads the first seed's data order",
    "family": "model family (gan_jax.families.FAMILIES): gan, vae, autoencoder",
    "plugins": "modules imported before the config is read (--import); recorded for resumes",
    "dataset.name": "dataset (gan_jax.data.DATASETS)",
    "dataset.data_dir": "where TFDS data lives; empty: $GAN_JAX_DATA_DIR or ~/tensorflow_datasets",
    "dataset.resolution": "image side length; 0: the dataset's native size",
    "dataset.preprocessing": "how pixel values are scaled (symmetric: [-1, 1]; unit: [0, 1]; "
                             "dynamic_binarize: Bernoulli draws)",
    "batch_size": "global batch, split over every device of every process",
    "num_train_steps": "steps of the run; decaying schedules without a length follow it",
    "latent_dim": "width of the latent vector z",
    "num_classes": "> 0: class-conditional G and D with this many classes",
    "latent_code.categories": "> 0: InfoGAN categorical code argmax(z[:K]); D gains Q",
    "latent_code.weight": "weight of Q's cross-entropy on the code (InfoGAN's lambda)",
    "n_critic": "discriminator updates per generator update, each on a fresh batch",
    "pack_size": "PacGAN: D judges packs of this many examples",
    "weight_clip": "> 0: clip D's weights to [-c, c] after each update (WGAN)",
    "compute_dtype": "float32, or bfloat16 forward passes (parameters stay float32)",
    "joint_discriminator_batch": "D judges real and fake in one pass (shared batch-norm "
                                 "statistics)",
    "loss.name": "adversarial loss (gan_jax.losses.ADVERSARIAL_LOSSES)",
    "loss.label_smoothing": "one-sided label smoothing s: real label 1 - s",
    "regularizers.*.weight": "weight of this D regulariser; 0: off",
    "regularizers.*.every": "lazy regularisation: apply every k steps, scaled by k",
    "augment.policy": "DiffAugment ops on every D input, e.g. color,translation,cutout",
    "ema.decay": "> 0: EMA of G's weights, used for sampling and evaluation",
    "ema.start_step": "before this step the EMA copies G's weights",
    "autoencoder.likelihood": "p(x | z): bernoulli or gaussian",
    "autoencoder.beta": "weight of the KL term (beta-VAE)",
    "autoencoder.gaussian_variance": "the Gaussian likelihood's variance (initial, if learned)",
    "autoencoder.learn_variance": "learn the Gaussian likelihood's variance",
    "autoencoder.iwae_samples": "importance samples of the test-set IWAE bound",
    "optimizer.*.name": "optimizer (gan_jax.optimizers.OPTIMIZERS)",
    "optimizer.*.learning_rate": "peak learning rate",
    "optimizer.*.b1": "Adam's beta1 (SGD: momentum)",
    "optimizer.*.b2": "Adam's beta2 (RMSProp: decay)",
    "optimizer.*.eps": "Adam's / RMSProp's epsilon",
    "optimizer.*.weight_decay": "AdamW's decoupled weight decay",
    "optimizer.*.schedule": "learning-rate schedule: constant, linear_decay, cosine",
    "optimizer.*.decay_steps": "length of a decaying schedule; 0: num_train_steps",
    "optimizer.*.grad_clip_norm": "> 0: clip the gradient's global norm",
    "log_every_steps": "steps between metric rows (may change on resume)",
    "eval_every_steps": "steps between evaluations (may change on resume)",
    "checkpoint_every_steps": "steps between checkpoints (may change on resume)",
    "keep_checkpoints": "checkpoints kept on disk",
    "eval.num_samples": "samples per evaluation",
    "eval.seed": "seed of the evaluation's latents",
    "eval.iwae_samples": "importance samples of the in-training IWAE bound",
    "eval.num_test_examples": "test examples per in-training evaluation; 0: all",
    "profile.start_step": "profiler trace: first step after this one",
    "profile.num_steps": "profiler trace: steps traced; 0: off",
    "allow_config_change": "resume although research keys changed",
    "require_same_code": "refuse to resume on code other than the last launch's",
}


def describe(key: str, config: dict) -> str:
  """The one-line meaning of a dotted key of `config`."""
  parts = key.split(".")
  if parts[0] in MODEL_SECTIONS and len(parts) == 2:
    name = config.get(parts[0], {}).get("name")
    if parts[1] == "name":
      return f"{MODEL_SECTIONS[parts[0]].kind} architecture (registered names)"
    return f"option of {MODEL_SECTIONS[parts[0]].kind} '{name}'"
  if parts[0] == "loss" and len(parts) == 3:
    return f"option of loss '{parts[1]}'"
  if parts[0] == "regularizers" and len(parts) == 3 and parts[2] not in ("weight", "every"):
    return f"option of regularizer '{parts[1]}'"
  for pattern in (key, ".".join([parts[0], "*", *parts[2:]])):
    if pattern in DESCRIPTIONS:
      return DESCRIPTIONS[pattern]
  return ""


def show(config: dict) -> str:
  """Every key of `config` with its value and its one-line meaning."""
  flat = flatten(config)
  width = max(len(f"{k} = {v!r}") for k, v in flat.items())
  return "\n".join(f"{f'{k} = {v!r}':<{width}}  # {describe(k, config)}".rstrip(" #")
                   for k, v in sorted(flat.items()))
