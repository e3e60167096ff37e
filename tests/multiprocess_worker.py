"""One process of a 2-process CPU cluster; launched by test_multiprocess.py.

usage: multiprocess_worker.py PORT PROCESS_ID WORKDIR NUM_STEPS
"""

import sys

import jax


def main():
  port, process_id, workdir, num_steps = sys.argv[1:]
  jax.config.update("jax_cpu_collectives_implementation", "gloo")
  jax.distributed.initialize(coordinator_address=f"127.0.0.1:{port}", num_processes=2,
                             process_id=int(process_id))
  assert jax.process_count() == 2 and len(jax.devices()) == 4, jax.devices()

  from configs import ring8
  from gan_jax.train import train_and_evaluate

  config = ring8.get_config("tiny")
  config.num_train_steps = int(num_steps)
  config.n_critic = 2
  train_and_evaluate(config, workdir)
  jax.distributed.shutdown()


if __name__ == "__main__":
  main()
