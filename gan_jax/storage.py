"""Where a run's files live, as `etils.epath` paths.

Every file a run writes or reads (workdir, checkpoints, metrics, TensorBoard,
samples, config, data dir, caches, command outputs) goes through
`etils.epath`, so a local path, a mounted bucket (gcsfuse, mountpoint-s3) and
a `gs://` URI take the same code.

`resolve` turns a path given on the command line into an absolute
`epath.Path`. A URI is accepted only where this install can reach it, and is
refused with one line before anything is written otherwise (instead of
becoming a local folder named `gs:`):

* `gs://` needs epath's client for it (TensorFlow's `tf.io.gfile`, or
  `gcsfs` under fsspec) and `google-cloud-storage`, which Orbax uses to list
  a bucket's checkpoints; Orbax writes the arrays through TensorStore's own
  GCS driver.
* Any other scheme (s3://, az://, ...) is refused: Orbax 0.12 hands
  TensorStore a local-file spec for every scheme but `gs://`, so checkpoints
  could not be written there. Mount such a bucket instead.

What a test proves: tests/test_storage.py trains (with a profiler trace),
resumes, evaluates and samples a run whose workdir is `gs://` against a
stand-in GCS (an fsspec filesystem, and a JSON-API server that TensorStore's
real GCS driver writes Orbax's arrays to, over one local folder), and gets
the local run's files, metrics and state bit for bit. It does not prove a
real bucket's credentials, latency or consistency, nor a `gs://` data dir
(TFDS and array_record write and read those with their own clients).

A few tools are local by nature and refuse a URI with `require_local` (raw
files for `prepare`); the workdir lock is skipped with a warning for a URI
(`gan_jax.workdir_lock`), and profiler traces are copied (`gan_jax.profiling`).
"""

from __future__ import annotations

import importlib.util
import os
from typing import IO, Callable

from etils import epath

from gan_jax.registry import ConfigError

# The fsspec protocol epath uses for a scheme, where it uses fsspec.
_FSSPEC_PROTOCOL = {"gs": "gcs"}


def split_scheme(path: str | os.PathLike) -> tuple[str, str]:
  """(scheme, rest) of a URI; ("", path) for a filesystem path."""
  text = os.fspath(path)
  scheme, separator, rest = text.partition("://")
  return (scheme, rest) if separator else ("", text)


def is_uri(path: str | os.PathLike) -> bool:
  return bool(split_scheme(path)[0])


def _has_module(name: str) -> bool:
  try:
    return importlib.util.find_spec(name) is not None
  except (ImportError, ValueError):  # a parent package missing, or a bare stub
    return False


def _fsspec_reaches(protocol: str) -> bool:
  """fsspec has a filesystem for `protocol`: one registered in this process,
  or the installed package its registry names for it."""
  if not _has_module("fsspec"):
    return False
  from fsspec.registry import known_implementations, registry

  if protocol in registry:
    return True
  known = known_implementations.get(protocol)
  return known is not None and _has_module(known["class"].partition(".")[0])


def _epath_uses_tensorflow() -> bool:
  """epath reads gs:// through tf.io.gfile where TensorFlow is installed,
  unless $EPATH_USE_TF says not to."""
  use_tf = os.environ.get("EPATH_USE_TF", "").lower() not in ("false", "no", "f", "0")
  return use_tf and _has_module("tensorflow")


def missing_clients(scheme: str) -> list[str]:
  """What this install lacks to read and write `scheme://` paths (empty: none);
  ValueError for a scheme the project cannot write to at all."""
  if scheme != "gs":
    raise ValueError(scheme)
  missing = []
  if not (_epath_uses_tensorflow() or _fsspec_reaches(_FSSPEC_PROTOCOL[scheme])):
    missing.append("gcsfs (or tensorflow)")
  if not _has_module("google.cloud.storage"):
    missing.append("google-cloud-storage")
  return missing


def resolve(path: str | os.PathLike, what: str = "path") -> epath.Path:
  """`path` as an absolute epath.Path; ConfigError for a URI this install
  cannot reach."""
  text = os.fspath(path)
  scheme, _ = split_scheme(text)
  if not scheme:
    return epath.Path(os.path.abspath(os.path.expanduser(text)))
  try:
    missing = missing_clients(scheme)
  except ValueError:
    raise ConfigError(
        f"The {what} {text} is a '{scheme}://' URI; runs write to local paths and gs:// "
        "only (Orbax checkpoints nowhere else): mount the bucket (e.g. mountpoint-s3) "
        "and pass the mounted path.") from None
  if missing:
    raise ConfigError(
        f"The {what} {text} needs {' and '.join(missing)}, which this install lacks: "
        f"pip install {' '.join(m.split(' ')[0] for m in missing)}, or mount the bucket "
        "(gcsfuse) and pass the mounted path.")
  return epath.Path(text)


def require_local(path: str | os.PathLike, what: str) -> str:
  """`path` as a string, for tools that read or write local files only;
  ConfigError for a URI."""
  scheme, _ = split_scheme(path)
  if scheme:
    raise ConfigError(f"The {what} {os.fspath(path)} must be a local path: it is used by "
                      "tools that read and write local files only. Copy the files to a "
                      "local folder (or mount the bucket) and pass that.")
  return os.fspath(path)


def write_atomically(path: str | os.PathLike, write: Callable[[IO[bytes]], None]) -> None:
  """Calls `write` on a temporary file beside `path`, then renames it over
  `path`: a reader sees the old file or the new one, never half of one (on an
  object store the new object appears whole when it is written)."""
  path = epath.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  partial = path.parent / f".{path.name}.{os.getpid()}.tmp"
  with partial.open("wb") as f:
    write(f)
  partial.replace(path)
