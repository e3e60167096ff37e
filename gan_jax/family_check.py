"""`check_contract(family, config)`: does a family keep `ModelFamily`'s contract?

Run it in a test of your own family; it traces (never compiles or runs) state
creation, one step on one device, and sampling, in a few seconds.
"""

from __future__ import annotations

import jax

from gan_jax import step as step_lib
from gan_jax.model_family import ModelFamily
from gan_jax.sharding import make_mesh


def check_contract(family, config, global_batch_size: int = 8) -> None:
  """Raises AssertionError where `family` breaks the contract above. Traces
  (never compiles or runs) creation, one step on one device, and sampling."""
  assert isinstance(family, ModelFamily), (
      f"{type(family).__name__} lacks members of gan_jax.model_family.ModelFamily")
  hash(family)  # it closes over jit as a static value
  for name in ("batches_per_step", "pack_size", "latent_dim", "num_classes"):
    value = getattr(family, name)
    assert isinstance(value, int) and value >= 0, f"{name}={value!r} is not an int >= 0"
  assert isinstance(family.evaluates_test_set, bool)
  assert family.evaluates_test_set == callable(getattr(family, "evaluate_batch", None)), (
      "evaluate_batch must exist exactly where evaluates_test_set is True")
  state = jax.eval_shape(lambda: family.create_state(config))
  assert family.sampling_player in state.players, (
      f"sampling_player {family.sampling_player!r} is not one of {list(state.players)}")
  noise = jax.eval_shape(lambda key: family.draw_noise(key, global_batch_size),
                         jax.random.PRNGKey(0))
  for leaf in jax.tree.leaves(noise):
    assert leaf.shape[:1] == (global_batch_size,), f"a noise leaf has shape {leaf.shape}"
  mesh = make_mesh(jax.devices()[:1])
  data_shape = tuple(family.data_shape)
  batches = {"x": jax.ShapeDtypeStruct(
      (family.batches_per_step, global_batch_size, *data_shape), jax.numpy.float32)}
  if family.num_classes:
    batches["label"] = jax.ShapeDtypeStruct((family.batches_per_step, global_batch_size),
                                            jax.numpy.int32)
  new_state, metrics = jax.eval_shape(step_lib.make_train_step(family, mesh, donate=False),
                                      state, batches)
  assert jax.tree.structure(new_state) == jax.tree.structure(state)
  assert all(m.shape == () for m in jax.tree.leaves(metrics)), "metrics must be scalars"
  latents = jax.ShapeDtypeStruct((global_batch_size, family.latent_dim), jax.numpy.float32)
  labels = (jax.ShapeDtypeStruct((global_batch_size,), jax.numpy.int32)
            if family.num_classes else None)
  samples = jax.eval_shape(family.sample, state, latents, labels)
  assert samples.shape == (global_batch_size, *data_shape), samples.shape
