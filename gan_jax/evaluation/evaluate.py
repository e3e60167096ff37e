"""Evaluation of a trained state: sample it and score the samples.

`evaluate_state` is the one evaluation: fixed-seed samples (`generate`,
data-parallel over the mesh), every metric that fits the dataset, and the
test-set bounds of families that model p(x). What it computes is an
`EvalSettings`: the training loop reads them from the config's `eval` block
(`EvalSettings.from_config`), and `evaluate_workdir`, behind the
`gan_jax.evaluate` command, from its flags. An `Evaluation` holds the
compiled sampler and test-set scorer between calls.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Optional

import jax
import numpy as np
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from gan_jax import provenance, seeds
from gan_jax.data import DatasetSpec
from gan_jax.data import pipeline as pipeline_lib
from gan_jax.evaluation import mixture_metrics
from gan_jax.registry import ConfigError
from gan_jax.run import data_dir_for, resolved_dataset, restore_for_inference
from gan_jax.sharding import DATA_AXIS, make_mesh, replicated

SAMPLE_BATCH = 2500


def cycling_labels(num_samples: int, num_classes: int) -> Optional[np.ndarray]:
  """Labels 0, 1, ..., K-1, 0, 1, ...: balanced classes for conditional models."""
  if not num_classes:
    return None
  return (np.arange(num_samples) % num_classes).astype(np.int32)


def make_sampler(family, mesh, use_ema: bool = True):
  """`family.sample` jitted to return its samples replicated on every device of
  `mesh`, so that every process can read them (inputs come in batch-sharded)."""
  return jax.jit(functools.partial(family.sample, use_ema=use_ema),
                 out_shardings=replicated(mesh))


def generate(family, state, num_samples: int, seed: int, sample_fn=None,
             labels: Optional[np.ndarray] = None, mesh=None) -> np.ndarray:
  """`num_samples` samples as a float32 NumPy array in the data's layout.

  The latents come from one fixed key, and each batch of them is split over
  the devices of `mesh` (default: all of them) along the batch axis, so that
  sampling runs data-parallel; generators sample with fixed batch statistics,
  so how the batch is split does not change any sample. Conditional models
  get `labels` (default: cycling over the classes). Pass a `make_sampler`
  result as `sample_fn` to reuse its compilation.
  """
  mesh = mesh or make_mesh()
  latents = np.asarray(jax.random.normal(jax.random.PRNGKey(seed),
                                         (num_samples, family.latent_dim)))
  if labels is None:
    labels = cycling_labels(num_samples, family.num_classes)
  sample = sample_fn or make_sampler(family, mesh)
  state = jax.device_put(state, replicated(mesh))
  batch_sharding = NamedSharding(mesh, P(DATA_AXIS))
  num_devices = mesh.devices.size
  batch_size = max(num_devices, SAMPLE_BATCH // num_devices * num_devices)
  parts = []
  for start in range(0, num_samples, batch_size):
    z = latents[start:start + batch_size]
    count = len(z)
    padding = -count % num_devices  # only the last batch can need it
    z = np.pad(z, ((0, padding), (0, 0)))
    batch_labels = None
    if labels is not None:
      batch_labels = jax.device_put(np.pad(labels[start:start + batch_size], (0, padding)),
                                    batch_sharding)
    out = sample(state, jax.device_put(z, batch_sharding), batch_labels)
    parts.append(np.asarray(out)[:count])
  return np.concatenate(parts).astype(np.float32)


def score_samples(spec: DatasetSpec, samples: np.ndarray) -> dict:
  """Every metric that fits the dataset, for one batch of samples."""
  results = {}
  if spec.mixture is not None:
    results.update(mixture_metrics.mode_coverage(samples, spec.mixture.means, spec.mixture.std))
  if spec.example_shape == (1,):
    results.update(mixture_metrics.moments(samples))
  return results


TEST_BATCH = 500


def test_set_metrics(family, state, images: np.ndarray, seed: int,
                     iwae_samples: Optional[int] = None, evaluate_fn=None) -> dict:
  """Per-example test-set means for families that model p(x) (autoencoders):
  reconstruction error, negative ELBO and its terms, the IWAE bound (nats).
  Pass a jitted `family.evaluate_batch` (iwae_samples static) as `evaluate_fn`
  to reuse its compilation."""
  evaluate_fn = evaluate_fn or jax.jit(family.evaluate_batch, static_argnums=3)
  key = jax.random.PRNGKey(seed)
  totals: dict = {}
  for start in range(0, len(images), TEST_BATCH):
    sums = evaluate_fn(state, images[start:start + TEST_BATCH],
                       jax.random.fold_in(key, start), iwae_samples)
    for name, value in jax.device_get(sums).items():
      totals[name] = totals.get(name, 0.0) + float(value)
  count = totals.pop("num_examples")
  means = {f"test_{name}": value / count for name, value in totals.items()}
  if iwae_samples is not None and iwae_samples <= 1:
    means.pop("test_iwae_nll", None)  # equals the one-sample ELBO estimate
  return means


def image_metrics(spec: DatasetSpec, family, samples: np.ndarray, data_dir: str,
                  seed: int, with_floor: bool = True) -> dict:
  """Classifier-based metrics where the dataset has a reference classifier."""
  from gan_jax.evaluation import image_evaluation

  if not (spec.is_image and image_evaluation.has_reference_classifier(spec)):
    return {}
  labels = cycling_labels(len(samples), family.num_classes)
  return image_evaluation.reference_metrics(spec, samples, data_dir, labels=labels,
                                            seed=seed, with_floor=with_floor)


def inception_metrics_enabled(setting) -> bool:
  """`config.eval.inception_metrics`: True, False, or "auto" (the default):
  on for GPU/TPU, off on CPU, where the network's 11 GFLOP per 299x299
  image cost minutes per thousand samples at every evaluation. The field is
  a string (its default's type), so a command line's True/False arrive as
  text and are read as such."""
  if isinstance(setting, str) and setting.lower() in ("true", "false"):
    setting = setting.lower() == "true"
  if setting == "auto":
    return jax.default_backend() != "cpu"
  if not isinstance(setting, bool):
    raise ConfigError(f"eval.inception_metrics must be True, False or 'auto', got {setting!r}.")
  return setting


def inception_image_metrics(spec: DatasetSpec, samples: np.ndarray, data_dir: str,
                            seed: int, with_floor: bool = True) -> dict:
  """Standard FID/KID on the FID Inception (`inception_*`, with the
  real-vs-real floor) for image datasets; a note when the weights are not
  prepared (gan_jax.evaluation.inception_metrics)."""
  from gan_jax.evaluation import inception_metrics

  if not spec.is_image:
    return {}
  return inception_metrics.evaluation_metrics(spec.name, samples, spec.value_range, data_dir,
                                              seed=seed, with_floor=with_floor)


@dataclasses.dataclass(frozen=True)
class EvalSettings:
  """What one evaluation computes."""

  num_samples: int
  seed: int = 0
  # Sample with the sampling player's EMA parameters where it has them.
  use_ema: bool = True
  # Metrics on the reference classifier, where the dataset has one.
  classifier_metrics: bool = True
  # Standard FID/KID on the FID Inception (image datasets)...
  inception_metrics: bool = True
  # ...on the first this many samples (0: all); the network costs ~0.1 s per
  # image on a CPU.
  inception_samples: int = 0
  # The real-vs-real floor beside each feature metric.
  floor: bool = True
  # Importance samples of the test-set IWAE bound; None: the family's own.
  iwae_samples: Optional[int] = None
  # Test examples scored (families that model p(x)); 0: the whole split.
  num_test_examples: int = 0

  @classmethod
  def from_config(cls, eval_config) -> EvalSettings:
    """The in-training evaluation of a config's `eval` block."""
    return cls(num_samples=eval_config.num_samples, seed=eval_config.seed,
               classifier_metrics=eval_config.get("classifier_metrics", True),
               inception_metrics=inception_metrics_enabled(
                   eval_config.get("inception_metrics", "auto")),
               floor=eval_config.get("floor", True),
               iwae_samples=eval_config.get("iwae_samples", 1),
               num_test_examples=eval_config.get("num_test_examples", 0))


class Evaluation:
  """A family on its dataset under fixed settings, with the compiled sampler
  (and test-set scorer) and the test images kept for every `evaluate_state`."""

  def __init__(self, family, spec: DatasetSpec, data_dir: str, settings: EvalSettings,
               mesh=None):
    self.family, self.spec, self.data_dir, self.settings = family, spec, data_dir, settings
    self.mesh = mesh or make_mesh()
    self.sample_fn = make_sampler(family, self.mesh, settings.use_ema)
    self.evaluate_fn = (jax.jit(family.evaluate_batch, static_argnums=3)
                        if family.evaluates_test_set else None)
    self._test_images = None

  def test_images(self) -> np.ndarray:
    if self._test_images is None:
      test = pipeline_lib.load_eval_split(self.spec, "test", self.data_dir)
      self._test_images = test["x"][:self.settings.num_test_examples or len(test["x"])]
    return self._test_images


def evaluate_state(evaluation: Evaluation, state) -> tuple[dict, np.ndarray]:
  """Every metric of `state` that fits the dataset, and the samples they were
  computed on."""
  family, spec, settings = evaluation.family, evaluation.spec, evaluation.settings
  samples = generate(family, state, settings.num_samples, settings.seed, evaluation.sample_fn,
                     mesh=evaluation.mesh)
  results = score_samples(spec, samples)
  if settings.classifier_metrics:
    results.update(image_metrics(spec, family, samples, evaluation.data_dir, settings.seed,
                                 with_floor=settings.floor))
  if settings.inception_metrics:
    results.update(inception_image_metrics(spec, samples[:settings.inception_samples or None],
                                           evaluation.data_dir, settings.seed,
                                           with_floor=settings.floor))
  if family.evaluates_test_set:
    results.update(test_set_metrics(family, state, evaluation.test_images(), settings.seed,
                                    settings.iwae_samples, evaluation.evaluate_fn))
  return results, samples


def evaluate_workdir(workdir: str, *, step: Optional[int] = None, num_samples: int = 2500,
                     seed: int = 0, use_ema: bool = True, inception: bool = True,
                     inception_samples: int = 0) -> dict:
  """A run's checkpoint (default: the latest) evaluated in full: every metric
  with its floor, the whole test split, the family's own IWAE bound. For a run
  of several seeds (config num_seeds), each seed's metrics under "seeds" and
  their mean ± standard error over the seeds that did not diverge
  (`gan_jax.seeds.summarize`)."""
  config, family, state = restore_for_inference(workdir, step)
  spec = resolved_dataset(config)
  settings = EvalSettings(num_samples=num_samples, seed=seed, use_ema=use_ema,
                          inception_metrics=inception, inception_samples=inception_samples)
  evaluation = Evaluation(family, spec, data_dir_for(config), settings)
  sampler = seeds.one_seed(config, state, 0).players[family.sampling_player]
  results = {"step": seeds.job_step(state), "num_samples": num_samples, "seed": seed,
             "dataset": spec.name, "config_sha256": provenance.config_hash(config),
             "used_ema": bool(use_ema and sampler.ema_params is not None)}
  count = seeds.num_seeds(config)
  if count == 1:
    results.update(evaluate_state(evaluation, state)[0])
  else:
    per_seed = [evaluate_state(evaluation, seeds.seed_state(state, i))[0]
                for i in range(count)]
    results.update(seeds.summarize(per_seed, seeds.seed_values(config),
                                   seeds.live_seeds(state), jax.device_get(state.step)))
  if family.evaluates_test_set:
    results["num_test_examples"] = len(evaluation.test_images())
  return results
