"""A multi-host job rehearsed on one machine:

    python -m gan_jax.launch --num_processes=2 --devices_per_process=2 -- \\
        --config=configs/ring8.py:tiny --workdir=/tmp/run

starts that many processes of `gan_jax.main --distributed` (or `--module`)
on 127.0.0.1, each with its own forced CPU devices, and passes them the
flags after `--`. Their output lines come prefixed with the process id.
SIGTERM and SIGINT are forwarded to every process (they run in their own
session, so a terminal's Ctrl-C reaches them once, through here). The exit
status is the worst of theirs (a death by signal N counts as 128 + N). Once
one process has failed, the others get `--grace_s` seconds to end, then are
killed: a process whose partner is gone would wait in a collective.
`--import=module` before `--` is passed on to every process.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import IO, Sequence

from absl import flags

from gan_jax import cli, plugins

FLAGS = flags.FLAGS
_POLL_S = 0.1
_DEVICE_COUNT_FLAG = "--xla_force_host_platform_device_count"


def define_flags():
  flags.DEFINE_integer("num_processes", 2, "Processes to start.", lower_bound=1)
  flags.DEFINE_integer("devices_per_process", 1, "Forced CPU devices of each process.",
                       lower_bound=1)
  flags.DEFINE_string("module", "gan_jax.main", "Entry point each process runs.")
  flags.DEFINE_integer("port", 0, "Coordinator port on 127.0.0.1 (0: a free one).")
  flags.DEFINE_float("grace_s", 30.0, "Seconds the others get once one process failed.")


def free_port() -> int:
  with socket.socket() as probe:
    probe.bind(("127.0.0.1", 0))
    return probe.getsockname()[1]


def process_environment(devices_per_process: int) -> dict:
  """This environment, on CPU with `devices_per_process` forced devices."""
  xla_flags = re.sub(rf"{_DEVICE_COUNT_FLAG}=\S+", "", os.environ.get("XLA_FLAGS", ""))
  return dict(os.environ, JAX_PLATFORMS="cpu", PYTHONUNBUFFERED="1",
              XLA_FLAGS=f"{xla_flags} {_DEVICE_COUNT_FLAG}={devices_per_process}".strip())


def _relay(stream: IO[bytes], prefix: bytes, lock: threading.Lock) -> None:
  for line in iter(stream.readline, b""):
    with lock:
      sys.stdout.buffer.write(prefix + line)
      sys.stdout.buffer.flush()
  stream.close()


def exit_status(returncode: int) -> int:
  return 128 - returncode if returncode < 0 else returncode


def launch(args: Sequence[str], *, num_processes: int, devices_per_process: int,
           module: str = "gan_jax.main", port: int = 0, grace_s: float = 30.0) -> int:
  """Runs the processes to the end; returns the worst exit status."""
  address = f"127.0.0.1:{port or free_port()}"
  env = process_environment(devices_per_process)
  processes = [
      subprocess.Popen(
          [sys.executable, "-m", module, "--distributed", f"--coordinator_address={address}",
           f"--num_processes={num_processes}", f"--process_id={index}", *args],
          env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
      for index in range(num_processes)]
  lock = threading.Lock()
  relays = [threading.Thread(target=_relay, args=(p.stdout, f"[{i}] ".encode(), lock),
                             daemon=True) for i, p in enumerate(processes)]
  for relay in relays:
    relay.start()

  def forward(signum, frame):
    del frame
    for process in processes:
      if process.poll() is None:
        process.send_signal(signum)

  previous = {signum: signal.signal(signum, forward)
              for signum in (signal.SIGTERM, signal.SIGINT)}
  try:
    deadline = None
    while any(p.poll() is None for p in processes):
      if deadline is None and any(p.poll() not in (None, 0) for p in processes):
        deadline = time.monotonic() + grace_s
      if deadline is not None and time.monotonic() > deadline:
        for index, process in enumerate(processes):
          if process.poll() is None:
            print(f"[launch] process {index} still running {grace_s:g} s after another "
                  "failed: killing it.", file=sys.stderr, flush=True)
            process.kill()
      time.sleep(_POLL_S)
  finally:
    for signum, handler in previous.items():
      signal.signal(signum, handler)
  for relay in relays:
    relay.join()
  return max(exit_status(p.returncode) for p in processes)


def main(argv):
  # Plugins named before `--` go to every process too.
  imports = [f"--{plugins.FLAG}={name}" for name in plugins.split(FLAGS[plugins.FLAG].value)]
  sys.exit(launch([*imports, *argv[1:]], num_processes=FLAGS.num_processes,
                  devices_per_process=FLAGS.devices_per_process, module=FLAGS.module,
                  port=FLAGS.port, grace_s=FLAGS.grace_s))


if __name__ == "__main__":
  define_flags()
  cli.run(main)
