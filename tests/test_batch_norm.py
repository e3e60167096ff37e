"""gan_jax.models.batch_norm against flax.linen.BatchNorm: same variables, same
outputs, running statistics and gradients, on one device and under shard_map
over 4 (the moments then cover the global batch)."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from gan_jax.models.batch_norm import BatchNorm, channel_sum, spread_channels

AXIS = "data"


class Net(nn.Module):
  """A batch norm between two layers with parameters, so that every gradient
  path (input, scale, bias, moments) reaches the loss non-trivially. The first
  layer has no bias: batch norm makes its gradient exactly 0, which both
  implementations give only up to round-off."""
  norm: type
  kwargs: dict

  @nn.compact
  def __call__(self, x, train: bool):
    x = nn.Dense(6, use_bias=False)(x)
    x = self.norm(use_running_average=not train, **self.kwargs)(x)
    return nn.Dense(3)(jnp.tanh(x))


def pair(**kwargs):
  return (Net(nn.BatchNorm, kwargs), Net(BatchNorm, kwargs),
          Net(BatchNorm, {**kwargs, "matvec_sums": False}))


def test_channel_sum_and_spread_gradients_match_plain_ops():
  x = jax.random.normal(jax.random.PRNGKey(0), (5, 3, 2, 4))
  w = jax.random.normal(jax.random.PRNGKey(1), (5, 3, 2, 4))
  v = jax.random.normal(jax.random.PRNGKey(2), (4,))
  np.testing.assert_allclose(channel_sum(x), x.sum((0, 1, 2)), rtol=1e-6, atol=1e-6)
  np.testing.assert_allclose(jax.grad(lambda a: (channel_sum(a) ** 2).sum())(x),
                             jax.grad(lambda a: (a.sum((0, 1, 2)) ** 2).sum())(x), rtol=1e-6)
  np.testing.assert_allclose(
      jax.grad(lambda u: (spread_channels(u, x.shape, True) * w).sum())(v),
      (w).sum((0, 1, 2)), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kwargs", [{}, {"use_scale": False, "use_bias": False},
                                    {"scale_init": nn.initializers.normal(1.0)}])
def test_matches_flax_on_one_device(kwargs):
  x = 3.0 + 2.0 * jax.random.normal(jax.random.PRNGKey(0), (8, 5, 5, 4))
  reference, *ours = pair(**kwargs)
  variables = reference.init(jax.random.PRNGKey(1), x, train=False)
  for net in ours:
    mine = net.init(jax.random.PRNGKey(1), x, train=False)
    assert jax.tree.structure(mine) == jax.tree.structure(variables)
    assert jax.tree.map(jnp.shape, mine) == jax.tree.map(jnp.shape, variables)

  def loss(net, params, x):
    out, updates = net.apply({**variables, "params": params}, x, train=True,
                             mutable=["batch_stats"])
    return jnp.sum(out ** 2), updates["batch_stats"]

  (ref_loss, ref_stats), ref_grads = jax.value_and_grad(
      lambda p, x: loss(reference, p, x), argnums=(0, 1), has_aux=True)(variables["params"], x)
  for net in ours:
    (my_loss, my_stats), my_grads = jax.value_and_grad(
        lambda p, x: loss(net, p, x), argnums=(0, 1), has_aux=True)(variables["params"], x)
    np.testing.assert_allclose(my_loss, ref_loss, rtol=1e-5)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5),
                 my_stats, ref_stats)
    # E[x²] - E[x]² cancels digits in both; the sums' order differs.
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-5),
                 my_grads, ref_grads)
    # Inference with the running averages.
    stats_vars = {**variables, "batch_stats": ref_stats}
    np.testing.assert_allclose(net.apply(stats_vars, x, train=False),
                               reference.apply(stats_vars, x, train=False), rtol=1e-5, atol=1e-6)


def test_matches_flax_under_shard_map_on_four_devices():
  mesh = Mesh(np.asarray(jax.devices()[:4]), (AXIS,))
  x = 1.0 + jax.random.normal(jax.random.PRNGKey(0), (16, 3, 3, 4))
  reference, ours, _ = pair(axis_name=AXIS)
  variables = reference.init(jax.random.PRNGKey(1), x, train=False)

  def sharded_grads(net):
    def replica_loss(params, stats, x_shard):
      out, updates = net.apply({"params": params, "batch_stats": stats}, x_shard, train=True,
                               mutable=["batch_stats"])
      return jax.lax.pmean(jnp.mean(out ** 2), AXIS), updates["batch_stats"]

    def replica(params, stats, x_shard):
      return jax.value_and_grad(replica_loss, has_aux=True)(params, stats, x_shard)

    step = jax.jit(jax.shard_map(replica, mesh=mesh, in_specs=(P(), P(), P(AXIS)),
                                 out_specs=((P(), P()), P())))
    return step(variables["params"], variables["batch_stats"],
                jax.device_put(x, NamedSharding(mesh, P(AXIS))))

  (ref_loss, ref_stats), ref_grads = sharded_grads(reference)
  (my_loss, my_stats), my_grads = sharded_grads(ours)
  np.testing.assert_allclose(my_loss, ref_loss, rtol=1e-5)
  for mine, theirs in ((my_stats, ref_stats), (my_grads, ref_grads)):
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-6),
                 mine, theirs)
  # The moments are the global batch's: equal to one device on all 16 rows.
  single = Net(nn.BatchNorm, {}).apply(variables, x, train=True,
                                       mutable=["batch_stats"])[1]["batch_stats"]
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6),
               my_stats, single)


def test_backward_all_reduces_only_channel_vectors():
  """The broadcasts are marked varying before they expand: the backward pass
  all-reduces (C,)-sized moments, never an activation-sized cotangent."""
  mesh = Mesh(np.asarray(jax.devices()[:4]), (AXIS,))
  x = jax.random.normal(jax.random.PRNGKey(0), (16, 3, 3, 4))
  net = Net(BatchNorm, {"axis_name": AXIS})
  variables = Net(nn.BatchNorm, {}).init(jax.random.PRNGKey(1), x, train=False)

  def replica(params, x_shard):
    def loss(p):
      out, _ = net.apply({"params": p, "batch_stats": variables["batch_stats"]}, x_shard,
                         train=True, mutable=["batch_stats"])
      return jax.lax.pmean(jnp.mean(out ** 2), AXIS)
    return jax.grad(loss)(params)

  step = jax.jit(jax.shard_map(replica, mesh=mesh, in_specs=(P(), P(AXIS)), out_specs=P()))
  hlo = step.lower(variables["params"], x).compile().as_text()
  reduces = [line for line in hlo.splitlines() if " all-reduce(" in line]
  assert reduces
  activation = "f32[4,3,3,6]"  # one replica's batch-norm input
  assert not [line for line in reduces if activation in line.split("all-reduce(")[0]]
