"""The GAN model family: players, noise, and the per-replica adversarial update.

One step = `n_critic` discriminator updates, each on a fresh real batch, then
one generator update. All reductions over the batch go through `batch_mean`,
a mean over the global batch (see `gan_jax.step` for why this also averages
the gradients across replicas).

Latent code (InfoGAN, Chen et al. 2016), `latent_code.categories = K > 0`:
G is conditioned on a categorical code c, and D's auxiliary head Q predicts c
from G's output; D (with Q) and G both also minimise
`latent_code.weight` x the cross-entropy of Q's prediction, a lower bound on
the mutual information I(c; G(z, c)) up to the constant H(c). The code is
not drawn separately: it is argmax(z[:K]), uniform over the K categories for
a standard normal z, so every path that only passes latents (sampling,
evaluation, interpolation) draws codes from their prior with no label
plumbing, and the model stays unconditional to the rest of the code base.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple, Optional

import jax
import jax.numpy as jnp
import optax
from jax import lax

from gan_jax import augment, losses, precision, regularizers
from gan_jax.models import DISCRIMINATORS, GENERATORS, build_module, module_options
from gan_jax.optimizers import make_optimizer
from gan_jax.per_replica import example_keys, pack
from gan_jax.registry import ConfigError
from gan_jax.sharding import batch_mean
from gan_jax.state import Player, TrainState

GENERATOR = "generator"
DISCRIMINATOR = "discriminator"


@dataclasses.dataclass(frozen=True)
class RegularizerTerm:
  name: str
  fn: Any
  weight: float
  every: int  # lazy regularisation: applied every k steps, scaled by k
  options: tuple[tuple[str, Any], ...] = ()
  with_keys: bool = False


@dataclasses.dataclass(frozen=True)
class GANFamily:
  """Static description of a GAN run; hashable, so it can close over jit."""

  generator: Any
  discriminator: Any
  latent_dim: int
  data_shape: tuple[int, ...]
  loss: losses.AdversarialLoss
  real_target: float
  regularizer_terms: tuple[RegularizerTerm, ...]
  n_critic: int
  pack_size: int
  weight_clip: float
  num_classes: int = 0  # 0: unconditional
  augment_policy: tuple[str, ...] = ()  # DiffAugment ops, applied to every D input
  ema_decay: float = 0.0  # 0: no generator EMA
  ema_start_step: int = 0
  # True: D sees real and fake examples as one batch (one pass, shared
  # batch-norm statistics); see `_judge_in_turn`.
  joint_discriminator_batch: bool = False
  code_categories: int = 0  # > 0: InfoGAN's categorical code, argmax(z[:K])
  code_weight: float = 1.0  # lambda of the code's cross-entropy term

  sampling_player = GENERATOR
  evaluates_test_set = False

  @property
  def conditional(self) -> bool:
    return self.num_classes > 0

  @property
  def batches_per_step(self) -> int:
    return self.n_critic

  @property
  def regularizers_with_keys(self) -> tuple[RegularizerTerm, ...]:
    return tuple(t for t in self.regularizer_terms if t.with_keys)

  @classmethod
  def from_config(cls, config, data_shape: tuple[int, ...]) -> "GANFamily":
    num_classes = int(config.get("num_classes", 0))
    # Only conditional runs pass `num_classes`, so unconditional-only models
    # (the MLPs) need not know about labels.
    conditioning = {"num_classes": num_classes} if num_classes else {}
    code = config.get("latent_code", {"categories": 0, "weight": 1.0})
    categories = int(code["categories"])
    if categories:
      _check_latent_code(config, categories, num_classes)
    dtype = precision.compute_dtype(config)
    generator = build_module(GENERATORS, config.generator.name,
                             module_options(config.generator), output_shape=tuple(data_shape),
                             compute_dtype=dtype,
                             **({"num_classes": categories} if categories else conditioning))
    discriminator = build_module(DISCRIMINATORS, config.discriminator.name,
                                 module_options(config.discriminator), compute_dtype=dtype,
                                 **conditioning,
                                 **({"code_categories": categories} if categories else {}))
    loss, real_target = losses.get_loss(config.loss.name, config.loss.label_smoothing,
                                        config.loss.to_dict())
    terms = []
    for name, reg in config.regularizers.items():
      registered = regularizers.REGULARIZERS.get(name)
      options = regularizers.configured_options(name, reg.to_dict())
      if reg.weight:
        if reg.get("every", 1) < 1:
          raise ConfigError(f"regularizers.{name}.every must be >= 1.")
        terms.append(RegularizerTerm(name, registered.fn, float(reg.weight),
                                     int(reg.get("every", 1)), tuple(sorted(options.items())),
                                     registered.with_keys))
    if config.n_critic < 1:
      raise ConfigError(f"n_critic must be >= 1, got {config.n_critic}.")
    if config.latent_dim < 1:
      raise ConfigError(f"latent_dim must be >= 1, got {config.latent_dim}.")
    if num_classes and config.pack_size > 1:
      raise ConfigError("pack_size > 1 (PacGAN) is not defined for conditional models "
                        f"(num_classes={num_classes}); set one of them to its default.")
    policy = augment.parse_policy(config.get("augment", {}).get("policy", ""))
    if policy and len(data_shape) != 3:
      raise ConfigError(f"augment.policy={policy} needs image data (H, W, C); "
                        f"this dataset's examples have shape {tuple(data_shape)}.")
    ema = config.get("ema", {"decay": 0.0, "start_step": 0})
    if not 0.0 <= ema["decay"] < 1.0:
      raise ConfigError(f"ema.decay must be in [0, 1), got {ema['decay']}.")
    return cls(generator=generator, discriminator=discriminator,
               latent_dim=config.latent_dim, data_shape=tuple(data_shape),
               loss=loss, real_target=real_target, regularizer_terms=tuple(terms),
               n_critic=config.n_critic, pack_size=config.pack_size,
               weight_clip=config.weight_clip, num_classes=num_classes,
               augment_policy=policy, ema_decay=float(ema["decay"]),
               ema_start_step=int(ema["start_step"]),
               joint_discriminator_batch=bool(config.get("joint_discriminator_batch", False)),
               code_categories=categories, code_weight=float(code["weight"]))

  def create_state(self, config) -> TrainState:
    key = jax.random.PRNGKey(config.seed)
    g_key, d_key = jax.random.split(jax.random.fold_in(key, 0x1D17))
    z = jnp.zeros((self.pack_size, self.latent_dim), jnp.float32)
    labels = jnp.zeros((1,), jnp.int32) if self.conditional else None
    g_labels = jnp.zeros((1,), jnp.int32) if self.conditional or self.code_categories else None
    g_vars = self.generator.init(g_key, z, g_labels, train=False)
    x = jnp.zeros((1, *self.data_shape[:-1], self.pack_size * self.data_shape[-1]),
                  jnp.float32)
    d_vars = self.discriminator.init(d_key, x, labels, train=False)
    run_length = config.get("num_train_steps")  # what decay schedules follow
    generator = Player.create(
        self.generator, make_optimizer(config.optimizer.generator, run_length), g_vars)
    if self.ema_decay:
      generator = generator.replace(ema_params=generator.params,
                                    ema_collections=generator.collections)
    players = {
        GENERATOR: generator,
        DISCRIMINATOR: Player.create(self.discriminator,
                                     make_optimizer(config.optimizer.discriminator,
                                                    run_length), d_vars),
    }
    return TrainState.create(config.seed, players)

  def draw_noise(self, key, global_batch_size: int) -> dict:
    """The step's draws, grouped by the update that uses them: under
    "critic", arrays (batch, n_critic, ...), one slice per critic update;
    under "generator", arrays (batch, ...)."""
    critic_key, gen_key, interp_key, label_key, augment_key = jax.random.split(key, 5)
    b, n = global_batch_size, self.n_critic
    critic = {"z": jax.random.normal(critic_key, (b, n, self.latent_dim)),
              "interpolation": jax.random.uniform(interp_key, (b, n))}
    generator = {"z": jax.random.normal(gen_key, (b, self.latent_dim))}
    if self.conditional:
      # Labels of generated examples: uniform over classes.
      critic["fake_labels"] = jax.random.randint(label_key, (b, n), 0, self.num_classes)
      generator["fake_labels"] = jax.random.randint(jax.random.fold_in(label_key, 1), (b,), 0,
                                                    self.num_classes)
    if self.augment_policy:
      # One draw per D input, keys in the order (real, fake) of each critic
      # update, then the generator update's (real, fake).
      draws = [augment.draw_augmentation(k, b, self.data_shape, self.augment_policy)
               for k in jax.random.split(augment_key, 2 * (n + 1))]
      critic["real_augment"] = _stack_updates(draws[0:2 * n:2])
      critic["fake_augment"] = _stack_updates(draws[1:2 * n:2])
      generator["real_augment"], generator["fake_augment"] = draws[2 * n:]
    # Keys for the losses and regularisers that take them. Folded from the step
    # key rather than split from it, so that runs without them draw as before.
    if self.loss.with_keys:
      # One per example for each critic update, then the generator update.
      loss_keys = example_keys(jax.random.fold_in(key, 1), (b, n + 1))
      critic["loss_keys"], generator["loss_keys"] = loss_keys[:, :n], loss_keys[:, n]
    if self.regularizers_with_keys:
      critic["regularizer_keys"] = example_keys(
          jax.random.fold_in(key, 2), (b, n, len(self.regularizers_with_keys)))
    return {"critic": critic, "generator": generator}

  def sample(self, state: TrainState, latents: jax.Array,
             labels: Optional[jax.Array] = None, use_ema: bool = True) -> jax.Array:
    """Generated samples in the data's layout; EMA weights where they exist."""
    g = state.players[GENERATOR]
    if use_ema and g.ema_params is not None:
      g = g.replace(params=g.ema_params, collections=g.ema_collections)
    if self.conditional and labels is None:
      labels = jnp.arange(latents.shape[0]) % self.num_classes
    samples, _ = g.apply(g.params, latents, self._generator_labels(latents, labels),
                         train=False)
    return samples

  def _generator_labels(self, z, labels):
    """What G is conditioned on: the class labels, the latent code, or None."""
    if self.code_categories:
      return self.latent_codes(z)
    return labels if self.conditional else None

  def latent_codes(self, z) -> jax.Array:
    """The categorical code of each latent: argmax(z[:K]), uniform over K."""
    return jnp.argmax(z[..., :self.code_categories], axis=-1).astype(jnp.int32)

  def with_codes(self, z, codes):
    """`z` (batch, latent_dim) with each row's first K coordinates permuted so
    that their argmax is `codes`: the largest one swapped into place. By the
    symmetry of the normal prior, a draw of z given its code."""
    z = jnp.asarray(z)
    rows = jnp.arange(z.shape[0])
    largest = self.latent_codes(z)
    swapped = z.at[rows, codes].set(z[rows, largest])
    return swapped.at[rows, largest].set(z[rows, codes])

  def _code_loss(self, code_logits, z):
    """Q's mean cross-entropy on the codes of latents `z` (InfoGAN's L_I
    up to H(c))."""
    ce = optax.softmax_cross_entropy_with_integer_labels(
        code_logits.astype(jnp.float32), self.latent_codes(z))
    return batch_mean(ce)

  def replica_update(self, state: TrainState, batches: dict, noise: dict):
    """`n_critic` critic updates, each on its own real batch, then one
    generator update judged against the last of those batches."""
    g = state.players[GENERATOR]
    d = state.players[DISCRIMINATOR]
    real_labels = batches.get("label") if self.conditional else None
    critic_metrics = []
    for i in range(self.n_critic):
      draws = jax.tree.map(lambda a: a[:, i], noise["critic"])
      g, d, metrics = self._critic_update(
          g, d, batches["x"][i], None if real_labels is None else real_labels[i], draws,
          state.step)
      critic_metrics.append(metrics)
    g, generator_metrics = self._generator_update(
        g, d, batches["x"][-1], None if real_labels is None else real_labels[-1],
        noise["generator"], state.step)
    metrics = jax.tree.map(lambda *xs: jnp.mean(jnp.stack(xs)), *critic_metrics)
    metrics.update(generator_metrics)
    new_state = state.replace(step=state.step + 1,
                              players={GENERATOR: g, DISCRIMINATOR: d})
    return new_state, metrics

  def _critic_update(self, g: Player, d: Player, real, real_labels, draws: dict, step):
    """One optimizer step of D on `real` and a fresh fake batch; G passes in
    training mode, so its batch statistics move too (as in PyTorch)."""
    real = self._augment(real, draws.get("real_augment"))
    fake_labels = draws.get("fake_labels")
    fake, g_collections = g.apply(g.params, draws["z"],
                                  self._generator_labels(draws["z"], fake_labels), train=True)
    fake = self._augment(lax.stop_gradient(fake), draws.get("fake_augment"))
    inputs = _CriticInputs(
        real=real, fake=fake, real_labels=real_labels, fake_labels=fake_labels, z=draws["z"],
        interpolation=draws["interpolation"],
        loss_keys=self._packed(draws.get("loss_keys")),
        regularizer_keys=self._packed(draws.get("regularizer_keys")))

    def d_objective(d_params):
      return self._critic_objective(d, d_params, inputs, step)

    grads, (d_collections, metrics) = jax.grad(d_objective, has_aux=True)(d.params)
    d = d.apply_gradients(grads, d_collections)
    if self.weight_clip > 0:
      d = d.replace(params=regularizers.clip_weights(d.params, self.weight_clip))
    g = g.replace(collections=g_collections)
    return g, d, {**metrics, "grad_norm_d": optax.tree.norm(grads)}

  def _generator_update(self, g: Player, d: Player, real, real_labels, draws: dict, step):
    """One optimizer step of G against D as it stands (D's collections from
    these passes are discarded), then G's EMA."""
    real = self._augment(real, draws.get("real_augment"))
    fake_labels = draws.get("fake_labels")

    def g_objective(g_params):
      fake, g_collections = g.apply(g_params, draws["z"],
                                    self._generator_labels(draws["z"], fake_labels), train=True)
      fake = self._augment(fake, draws.get("fake_augment"))
      judgement = self._judge_as_is(d, pack(real, self.pack_size), real_labels,
                                    pack(fake, self.pack_size), fake_labels)
      pair = self.loss(lax.stop_gradient(judgement.d_real), judgement.d_fake,
                       batch_mean=batch_mean, real_target=self.real_target,
                       keys=self._packed(draws.get("loss_keys")))
      metrics = {"loss_g": pair.generator}
      total = pair.generator
      if self.code_categories:
        metrics["code_ce_g"] = self._code_loss(judgement.fake_code_logits, draws["z"])
        total = total + self.code_weight * metrics["code_ce_g"]
      return total, (g_collections, metrics)

    (_, (g_collections, metrics)), grads = jax.value_and_grad(g_objective, has_aux=True)(
        g.params)
    g = g.apply_gradients(grads, g_collections)
    if self.ema_decay:
      g = self._update_ema(g, step)
    return g, {**metrics, "grad_norm_g": optax.tree.norm(grads)}

  def _packed(self, per_example):
    """One row per packed D input (its first example's), or None."""
    return None if per_example is None else per_example[::self.pack_size]

  def _augment(self, x, params):
    if params is None:
      return x
    return augment.apply_augmentation(x, params, self.augment_policy)

  def _update_ema(self, g: Player, step) -> Player:
    """EMA of G's weights and of its batch statistics (averaged alongside, so
    the EMA generator's normalisation matches its own weights). Before
    `ema_start_step` the average just copies the weights."""
    decay = jnp.where(step >= self.ema_start_step, self.ema_decay, 0.0)

    def average(old, new):
      return decay * old + (1.0 - decay) * new

    return g.replace(ema_params=jax.tree.map(average, g.ema_params, g.params),
                     ema_collections=jax.tree.map(average, g.ema_collections,
                                                  g.collections))

  def _judge_jointly(self, d: Player, d_params, real, real_labels, fake,
                     fake_labels) -> _Judgement:
    """One pass over real and fake concatenated: shared batch-norm statistics."""
    labels = None if real_labels is None else jnp.concatenate([real_labels, fake_labels])
    outputs, collections = d.apply(d_params, jnp.concatenate([real, fake]), labels,
                                   train=True)
    logits, code_logits = self._split(outputs)
    n = real.shape[0]
    return _Judgement(logits[:n], logits[n:], collections, collections,
                      None if code_logits is None else code_logits[n:])

  def _judge_in_turn(self, d: Player, d_params, real, real_labels, fake,
                     fake_labels) -> _Judgement:
    """D's outputs on a real and a fake batch for its own update.

    Separately (the default), each batch is its own forward pass, the fake
    pass continuing from the collections the real pass left, so a batch-norm
    D normalises fakes with fake statistics only, which hides from it any
    shift of the fake batch's mean features. Jointly
    (`joint_discriminator_batch`), one pass sees both: the same function for
    a D without batch-dependent layers (one pass instead of two), shared
    statistics with batch norm (a different objective, chosen in the config)."""
    if self.joint_discriminator_batch:
      return self._judge_jointly(d, d_params, real, real_labels, fake, fake_labels)
    d_real, after_real = d.apply(d_params, real, real_labels, train=True)
    d_fake, after_both = d.replace(collections=after_real).apply(d_params, fake, fake_labels,
                                                                 train=True)
    d_fake, fake_code_logits = self._split(d_fake)
    return _Judgement(self._split(d_real)[0], d_fake, after_real, after_both, fake_code_logits)

  def _judge_as_is(self, d: Player, real, real_labels, fake, fake_labels) -> _Judgement:
    """D's outputs for G's update: separate passes both start from D's own
    collections, as nothing they leave is kept."""
    if self.joint_discriminator_batch:
      return self._judge_jointly(d, d.params, real, real_labels, fake, fake_labels)
    d_real = self._split(d.apply(d.params, real, real_labels, train=True)[0])[0]
    d_fake, fake_code_logits = self._split(d.apply(d.params, fake, fake_labels, train=True)[0])
    return _Judgement(d_real, d_fake, d.collections, d.collections, fake_code_logits)

  def _split(self, outputs):
    """D's adversarial logits and Q's code logits (None without a code)."""
    return outputs if self.code_categories else (outputs, None)

  def _critic_objective(self, d: Player, d_params, inputs: _CriticInputs, step):
    real_packed = pack(inputs.real, self.pack_size)
    fake_packed = pack(inputs.fake, self.pack_size)
    judgement = self._judge_in_turn(d, d_params, real_packed, inputs.real_labels, fake_packed,
                                    inputs.fake_labels)
    d_real, d_fake = judgement.d_real, judgement.d_fake
    # Penalties run D as it was after judging the real batch (spectral norm's
    # power iteration has stepped once there, as before the fake pass).
    d = d.replace(collections=judgement.after_real)
    pair = self.loss(d_real, d_fake, batch_mean=batch_mean, real_target=self.real_target,
                     keys=inputs.loss_keys)
    total = pair.discriminator
    metrics = {"loss_d": pair.discriminator, "d_real": batch_mean(d_real),
               "d_fake": batch_mean(d_fake)}
    if self.code_categories:
      metrics["code_ce_d"] = self._code_loss(judgement.fake_code_logits, inputs.z)
      total = total + self.code_weight * metrics["code_ce_d"]
    if self.loss.to_probability is not None:
      metrics["p_real"] = batch_mean(self.loss.to_probability(d_real))
      metrics["p_fake"] = batch_mean(self.loss.to_probability(d_fake))

    def discriminate(x):
      # Penalties are taken at the real labels (also on real-fake mixtures).
      return self._split(d.apply(d_params, x, inputs.real_labels, train=True)[0])[0]

    packed_interpolation = inputs.interpolation[::self.pack_size]
    keyed = self.regularizers_with_keys
    for term in self.regularizer_terms:
      def penalty(term=term):
        extra = dict(term.options)
        if term.with_keys:
          extra["keys"] = inputs.regularizer_keys[:, keyed.index(term)]
        return term.fn(discriminate, real_packed, fake_packed, packed_interpolation,
                       batch_mean=batch_mean, **extra)
      if term.every > 1:
        value = lax.cond(step % term.every == 0, lambda: term.every * penalty(),
                         lambda: jnp.zeros((), jnp.float32))
      else:
        value = penalty()
      metrics[f"reg_{term.name}"] = value
      total = total + term.weight * value
    return total, (judgement.after_both, metrics)


class _CriticInputs(NamedTuple):
  """What one critic update's objective sees: the real and fake batches (after
  augmentation, before packing), their labels, and per-example draws; the keys
  one per packed row."""

  real: jax.Array
  fake: jax.Array
  real_labels: Optional[jax.Array]
  fake_labels: Optional[jax.Array]
  interpolation: jax.Array
  z: jax.Array  # the fake batch's latents (their codes, with a latent code)
  loss_keys: Optional[jax.Array] = None
  regularizer_keys: Optional[jax.Array] = None


class _Judgement(NamedTuple):
  """D's outputs on a real and a fake batch, its collections after the pass
  that judged the real batch and after both, and Q's code logits for the fake
  batch (None without a latent code)."""

  d_real: jax.Array
  d_fake: jax.Array
  after_real: Any
  after_both: Any
  fake_code_logits: Optional[jax.Array] = None


def _check_latent_code(config, categories: int, num_classes: int) -> None:
  if num_classes:
    raise ConfigError(f"latent_code.categories={categories} is for unconditional models; "
                      f"this config has num_classes={num_classes}. Set one of them to 0.")
  if categories < 2 or categories > config.latent_dim:
    raise ConfigError(f"latent_code.categories must be 0 or in 2..latent_dim "
                      f"({config.latent_dim}), since the code is argmax(z[:categories]); "
                      f"got {categories}.")
  if config.pack_size > 1:
    raise ConfigError("latent_code (InfoGAN) needs pack_size=1: Q predicts one code per "
                      f"example, got pack_size={config.pack_size}.")
  def has_code_head(name):
    return "code_categories" in {f.name for f in dataclasses.fields(DISCRIMINATORS.get(name))}

  name = config.discriminator.name
  if not has_code_head(name):
    able = [n for n in DISCRIMINATORS.names() if has_code_head(n)]
    raise ConfigError(f"discriminator '{name}' has no code head (Q) for latent_code; "
                      f"discriminators with one: {', '.join(able)}.")


def _stack_updates(draws: list) -> Any:
  """Per-update draws (batch, ...) stacked as (batch, updates, ...)."""
  return jax.tree.map(lambda *xs: jnp.stack(xs, axis=1), *draws)
