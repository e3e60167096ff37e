"""What every experiment script does with its numbers: summarise them over
seeds, say which machine made them, and write them to its results file.

One seed has no standard error: `mean_and_standard_error` returns NaN for it
(never 0, which would read as a measured zero spread), and `format_mean_se`
then prints the mean alone.
"""

from __future__ import annotations

import json
import math
import os
from typing import Sequence

from gan_jax import provenance, seeds


def mean_and_standard_error(values: Sequence[float]) -> tuple[float, float]:
  """Mean and standard error of the mean (gan_jax.seeds' summary of a
  many-seed job); NaN for the standard error of a single value."""
  if not len(values):
    raise ValueError("no values to summarise")
  mean, stderr = seeds.mean_and_stderr(values)
  return mean, math.nan if stderr is None else stderr


def format_mean_se(mean: float, se: float, spec: str) -> str:
  """"mean ± se" in the format `spec` (e.g. ".3f"); the mean alone when the
  standard error is NaN."""
  if math.isnan(se):
    return format(mean, spec)
  return f"{mean:{spec}} ± {se:{spec}}"


def machine() -> dict:
  """The CPU, its core count and the 1-minute load average, for a results
  file's wall-clock figures."""
  return {"cpu": provenance.cpu_features(), "cpus": os.cpu_count(),
          "load_average": os.getloadavg()[0]}


def write_json(path: str, record) -> None:
  """Writes `record` to `path` (its folder made if missing) through a temporary
  file, so an interrupted write never leaves half a results file."""
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  temporary = path + ".tmp"
  with open(temporary, "w") as f:
    json.dump(record, f, indent=2)
    f.write("\n")
  os.replace(temporary, path)
