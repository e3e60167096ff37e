"""Where a run's files live: a local directory or a remote store, as `etils.epath` paths.

`resolve` turns a path given on the command line into an `epath.Path`: a
local path becomes absolute; a URI keeps its scheme. A scheme this install
cannot reach (gs:// without gcsfs or TensorFlow, or one epath does not know)
is refused with one line, before anything is written, instead of becoming a
local folder named `gs:`.
"""

from __future__ import annotations

import importlib.util
import os

from etils import epath

from gan_jax.registry import ConfigError

# The packages epath (and Orbax, through TensorStore) reach each scheme with.
SCHEME_CLIENTS = {
    "gs": ("gcsfs", "tensorflow"),
    "s3": ("s3fs", "tensorflow"),
    "az": ("adlfs",),
    "hf": ("huggingface_hub",),
}


def resolve(path: str | os.PathLike, what: str = "path") -> epath.Path:
  """`path` as an epath.Path; ConfigError if its scheme cannot be reached."""
  text = os.fspath(path)
  scheme, separator, _ = text.partition("://")
  if not separator:
    return epath.Path(os.path.abspath(os.path.expanduser(text)))
  if scheme not in SCHEME_CLIENTS:
    raise ConfigError(f"The {what} {text} uses the scheme '{scheme}://', which this "
                      f"project cannot read or write; use a local path or one of "
                      f"{', '.join(s + '://' for s in SCHEME_CLIENTS)}.")
  clients = SCHEME_CLIENTS[scheme]
  if not any(importlib.util.find_spec(client) for client in clients):
    raise ConfigError(f"The {what} {text} needs {' or '.join(clients)} to reach "
                      f"'{scheme}://', and this install has none of them; install one "
                      "or use a local path.")
  return epath.Path(text)
