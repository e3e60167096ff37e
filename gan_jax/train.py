"""`train_and_evaluate(config, workdir)`: the one training loop for every family.

Resume order: if `workdir/checkpoints` holds a checkpoint, the newest one that
restores and verifies is restored (state and data position; damaged ones are
moved aside, see `gan_jax.checkpoint`) after checking that the config matches
`workdir/config.json`; otherwise the state is initialised from `config.seed`.

The loop dispatches steps without waiting for them. The host reads metrics
back only every `log_every_steps` steps and before each checkpoint; then it
checks every pending step's metrics for NaN/Inf, stopping at the first bad
one without saving it; in a job of several seeds the step has frozen a bad
seed instead, and the host names it (`gan_jax.seeds`). SIGTERM (how TPU preemption arrives) or SIGINT makes
the loop save a checkpoint and return; with several processes, all save the
same step (`multihost.StopSignals`). Files that several processes read are
written by process 0 between barriers (`multihost.on_first_process`).
"""

from __future__ import annotations

import math
import time

import jax
import ml_collections
import numpy as np
import PIL.Image
from etils import epath
import logging

from gan_jax import config_validation, multihost, plots, provenance, seeds, storage
from gan_jax.checkpoint import Checkpointer
from gan_jax.data import pipeline as pipeline_lib
from gan_jax.evaluation.evaluate import EvalSettings, Evaluation, evaluate_state
from gan_jax.families import build_family
from gan_jax.metric_writer import MetricWriter
from gan_jax.optimizers import schedule_note
from gan_jax.registry import ConfigError
from gan_jax.profiling import StepTraceWindow
from gan_jax.sharding import make_mesh, replicated
from gan_jax.step import check_global_batch, make_train_step
from gan_jax.run import data_dir_for, load_training_data, resolved_dataset
from gan_jax.workdir_lock import WorkdirLock

log = logging.getLogger("gan_jax")
MAX_STEPS_IN_FLIGHT = 2


class NonFiniteLossError(FloatingPointError):
  """A logged metric became NaN or Inf; training stopped."""


def _initial_state(family, config, mesh):
  return jax.jit(lambda: seeds.create_state(family, config),
                 out_shardings=replicated(mesh))()


class _Evaluator:
  """In-training evaluation: `evaluate_state` under the config's `eval`
  settings, the sampling player's scalar parameters, and pictures.

  For 2-D data the picture is a scatter plot over the modes; for images it is
  a grid from one fixed latent batch (one row per class for conditional
  models), and `samples/progress.gif` animates the grids so far.
  """

  GRID_SIZE = 8

  def __init__(self, family, spec, config, workdir, writer, mesh):
    self.family, self.spec, self.config, self.writer = family, spec, config, writer
    self.sample_dir = epath.Path(workdir) / "samples"
    self.num_seeds = seeds.num_seeds(config)
    self.evaluation = Evaluation(family, spec, data_dir_for(config),
                                 EvalSettings.from_config(config.eval), mesh)

  def __call__(self, state, step: int) -> dict:
    """One seed: its metrics. Several: each seed's (pictures in
    samples/seed_<i>/), their mean ± standard error over the live seeds."""
    if self.num_seeds == 1:
      results = self._evaluate(state, step, self.sample_dir, "samples")
      self.writer.write_scalars(step, {f"eval/{k}": v for k, v in results.items()
                                       if isinstance(v, (int, float))})
      return results
    steps = np.asarray(jax.device_get(state.step))
    per_seed = [self._evaluate(seeds.seed_state(state, i), step,
                               self.sample_dir / f"seed_{i}", f"samples/seed_{i}")
                for i in range(self.num_seeds)]
    live = steps == step
    summary = seeds.summarize(per_seed, seeds.seed_values(self.config), live, steps)

    def numeric(results):
      return {f"eval/{k}": v for k, v in results.items()
              if isinstance(v, (int, float)) and not isinstance(v, bool)}

    self.writer.write_scalars(step, numeric(summary), per_seed={
        int(i): numeric(per_seed[i]) for i in np.flatnonzero(live)})
    return summary

  def _evaluate(self, state, step: int, sample_dir, image_tag: str) -> dict:
    results, samples = evaluate_state(self.evaluation, state)
    results.update(self._tracked_parameters(state))
    if self.writer.active:
      sample_dir.mkdir(parents=True, exist_ok=True)
      path = sample_dir / f"step_{step:07d}.png"
      if samples.shape[1:] == (2,):
        means = None if self.spec.mixture is None else self.spec.mixture.means
        image = plots.scatter_png(path, samples, means, f"{self.spec.name}, step {step}")
        self.writer.write_image(step, image_tag, image)
      elif samples.ndim == 4:
        image = self._image_grid(state)
        plots.save_png(path, image)
        self.writer.write_image(step, image_tag, image)
        self._write_animation(sample_dir, step)
    return results

  def _image_grid(self, state):
    num_classes = self.family.num_classes
    rows = num_classes or self.GRID_SIZE
    cols = self.GRID_SIZE
    latents = jax.random.normal(jax.random.PRNGKey(self.config.eval.seed),
                                (rows * cols, self.family.latent_dim))
    labels = np.repeat(np.arange(rows), cols).astype(np.int32) if num_classes else None
    images = np.asarray(self.evaluation.sample_fn(state, latents, labels))
    row_labels = [str(k) for k in range(rows)] if num_classes else None
    return plots.image_grid(images, rows, cols, value_range=self.spec.value_range,
                            row_labels=row_labels)

  def _write_animation(self, sample_dir, step: int):
    """Rebuilds the GIF from the grids on disk up to `step`, so a resumed run's
    animation matches an uninterrupted one."""
    frames = []
    for path in sorted(sample_dir.glob("step_*.png")):
      if int(path.name[5:12]) <= step:
        with path.open("rb") as f:
          frames.append(np.asarray(PIL.Image.open(f)))
    plots.save_gif(sample_dir / "progress.gif", frames)

  def _tracked_parameters(self, state) -> dict:
    """Scalar parameters of the sampling player (the toy example's theta1, theta2)."""
    params = state.players[self.family.sampling_player].params
    return {f"param/{k}": float(v) for k, v in params.items()
            if hasattr(v, "shape") and v.shape == ()}


def _check_finite(step: int, metrics: dict, checkpointer: Checkpointer):
  # Losses first: they are what the user will want named.
  for name in sorted(metrics, key=lambda k: (not k.startswith("loss"), k)):
    value = metrics[name]
    if not math.isfinite(value):
      raise NonFiniteLossError(f"Metric '{name}' is {value} at step {step}; training "
                               f"stopped ({checkpointer.describe_latest()}).")


def _check_seeds(state, step: int, live: np.ndarray, fetched: list, config,
                 checkpointer: Checkpointer) -> np.ndarray:
  """Which seeds are live at `step`; reports, by index and step, each seed
  the step froze since the last check (`gan_jax.seeds`), and stops the job
  when none is left. `fetched`: the (step, per-seed metrics) since then."""
  steps = np.asarray(jax.device_get(state.step))
  now_live = steps == step
  by_step = dict(fetched)
  for index in np.flatnonzero(live & ~now_live):
    diverged = int(steps[index]) + 1
    values = by_step.get(diverged, {})
    bad = [k for k, v in sorted(values.items()) if not math.isfinite(float(v[index]))]
    cause = (f"{', '.join(bad)} non-finite" if bad else "its updated state non-finite")
    log.warning("Seed index %d (seed %d) diverged at step %d (%s); it keeps its state "
                "of step %d and is left out of later updates and of the mean.", index,
                seeds.seed_values(config)[index], diverged, cause, diverged - 1)
  if not now_live.any():
    raise NonFiniteLossError(f"Every seed diverged (at steps {(steps + 1).tolist()}); "
                             f"training stopped ({checkpointer.describe_latest()}).")
  return now_live


def _check_code_version(config, workdir: str) -> None:
  """One line when the run resumes on code other than its last launch's;
  refused under `require_same_code`."""
  difference = provenance.code_difference(workdir, config.get("plugins", ""))
  if difference is None:
    return
  if config.get("require_same_code", False):
    raise ConfigError(f"{workdir} was last launched on other code ({difference}); "
                      "require_same_code=True refuses to resume it.")
  log.warning("Resuming on other code than the last launch's: %s.", difference)


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """Trains (or resumes) the run in `workdir`; returns the last evaluation.

  The config is checked in full before anything is written; the workdir is
  locked by process 0 for the run's life (`gan_jax.workdir_lock`)."""
  workdir = storage.resolve(workdir, "workdir")
  config_validation.validate(config)
  data_dir = data_dir_for(config)
  spec = resolved_dataset(config)
  family = build_family(config, spec.example_shape)
  mesh = make_mesh()
  check_global_batch(config.batch_size, mesh, per_replica_multiple=family.pack_size)
  lock = WorkdirLock(workdir)
  multihost.on_first_process(lock.acquire, f"locking {workdir}")
  try:
    return _train_locked(config, workdir, data_dir, spec, family, mesh)
  finally:
    if multihost.is_first_process():
      lock.release()


def _train_locked(config, workdir, data_dir, spec, family, mesh) -> dict:
  # Every process checks against a saved config before any is written, so a
  # mismatch stops them all alike.
  provenance.check_config(config, workdir)
  note = schedule_note(config)
  if note and multihost.is_first_process():
    log.warning(note)
  multihost.barrier("config checked")

  num_seeds = seeds.num_seeds(config)
  arrays = load_training_data(spec, data_dir)
  pipeline = pipeline_lib.InputPipeline(
      arrays, spec.preprocess, global_batch_size=config.batch_size,
      batches_per_step=family.batches_per_step, seed=config.seed, mesh=mesh,
      seed_axis=seeds.data_seeds(config) if num_seeds > 1 else None)

  checkpointer = Checkpointer(workdir, max_to_keep=config.keep_checkpoints)
  abstract = jax.eval_shape(lambda: seeds.create_state(family, config))
  restored = checkpointer.restore_latest(abstract, replicated(mesh))
  if restored is not None:
    state, position = restored
    resume_step = seeds.job_step(state)
    log.info("Resumed from step %d (data position %d).", resume_step, position)
  else:
    state, position, resume_step = _initial_state(family, config, mesh), 0, None
  start_step = seeds.job_step(state)
  live = seeds.live_seeds(state)
  if resume_step is not None:
    _check_code_version(config, workdir)

  def write_records():
    provenance.save_config(config, workdir)
    provenance.save_environment(workdir, start_step, config.get("plugins", ""))

  multihost.on_first_process(write_records, f"writing the config and environment to {workdir}")

  writer = MetricWriter(workdir, resume_step=resume_step)
  evaluator = _Evaluator(family, spec, config, workdir, writer, mesh)
  train_step = make_train_step(family, mesh, num_seeds=num_seeds)
  trace = StepTraceWindow(config.get("profile", {}), workdir)

  pending: list[tuple[int, dict]] = []
  last_eval: dict = {}
  timer = (time.perf_counter(), start_step)

  def drain_metrics(step: int, write: bool):
    """Reads pending metrics back, checks them, and logs the current step's if
    `write`. Rows go only at fixed steps, so a preempted and resumed run logs
    exactly the rows an uninterrupted run would."""
    nonlocal pending, timer, live
    fetched = jax.device_get(pending)
    pending = []
    if num_seeds == 1:
      for pending_step, values in fetched:
        _check_finite(pending_step, values, checkpointer)
    else:
      live = _check_seeds(state, step, live, fetched, config, checkpointer)
    now = time.perf_counter()
    steps_per_sec = (step - timer[1]) / max(now - timer[0], 1e-9)
    timer = (now, step)
    if write and fetched and fetched[-1][0] == step:
      values = fetched[-1][1]
      per_seed = None
      if num_seeds > 1:
        per_seed = {int(i): {k: float(v[i]) for k, v in values.items()}
                    for i in np.flatnonzero(live)}
        values = {k: np.mean(v[live]) for k, v in values.items()}
      scalars = {k: float(v) for k, v in values.items()}
      writer.write_scalars(step, {**scalars, "steps_per_sec": steps_per_sec},
                           per_seed=per_seed)
      eta = (config.num_train_steps - step) / max(steps_per_sec, 1e-9)
      log.info("step %d/%d | %.1f steps/s | %s | ETA %.0fs", step,
                   config.num_train_steps, steps_per_sec,
                   " ".join(f"{k} {v:.4g}" for k, v in sorted(scalars.items())
                            if k.startswith("loss")), eta)

  step = start_step
  try:
    with multihost.StopSignals() as stop_signals:
      if step < config.num_train_steps:
        batches_iter = pipeline.iterate(position)
        for next_position, batches in batches_iter:
          trace.before_step(step + 1)
          state, step_metrics = train_step(state, batches)
          position = next_position
          step += 1
          trace.after_step(step, step_metrics)
          pending.append((step, step_metrics))
          if len(pending) > MAX_STEPS_IN_FLIGHT:
            # Bounded dispatch-ahead: waits for an older step to finish (no
            # transfer). Unbounded queues of collective programs can deadlock
            # XLA:CPU's shared thread pool when devices are simulated.
            jax.block_until_ready(pending[-MAX_STEPS_IN_FLIGHT - 1][1])
          finished = step >= config.num_train_steps
          # Asked at every step: in a cluster, JAX agrees on the stop step
          # from the steps every process has asked at.
          asked_to_stop = stop_signals.should_stop(step)
          stopping = finished or asked_to_stop
          saving = stopping or step % config.checkpoint_every_steps == 0
          logging_step = finished or step % config.log_every_steps == 0
          if saving or logging_step:
            drain_metrics(step, write=logging_step)
          if step % config.eval_every_steps == 0 or finished:
            last_eval = evaluator(state, step)
          if saving:
            checkpointer.save(step, state, position)
          if stopping:
            break
        batches_iter.close()
      elif resume_step is not None:
        last_eval = evaluator(state, step)
  finally:
    trace.close()
    checkpointer.close()
    writer.close()
  return {"step": step, **last_eval}

