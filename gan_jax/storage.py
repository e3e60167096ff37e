"""Where a run's files live, as `etils.epath` paths.

`resolve` turns a path given on the command line into an absolute
`epath.Path`. A URI (gs://, s3://, ...) is refused with one line before
anything is written, instead of silently becoming a local folder named
`gs:`: not every writer of a run (metric logs, TensorBoard, the data cache)
reaches remote stores yet, so a bucket is used through a mount (gcsfuse,
mountpoint-s3), which is a filesystem path.
"""

from __future__ import annotations

import os

from etils import epath

from gan_jax.registry import ConfigError


def resolve(path: str | os.PathLike, what: str = "path") -> epath.Path:
  """`path` as an absolute epath.Path; ConfigError for a URI."""
  text = os.fspath(path)
  scheme, separator, _ = text.partition("://")
  if separator:
    raise ConfigError(
        f"The {what} {text} is a '{scheme}://' URI, which this project does not write "
        "to; mount the bucket (e.g. gcsfuse, mountpoint-s3) and pass the mounted path.")
  return epath.Path(os.path.abspath(os.path.expanduser(text)))
