"""Which code a run ran: the git commit of the gan_jax checkout, whether its
tree had local changes, and a hash of those changes.

Recorded in every `environment-<step>.json`; a resume compares the record of
the run's last launch with the code now (`difference`). Untracked files are
not hashed: commit or `git add -N` a new file to have it count.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from typing import Optional

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def _git(*args: str) -> Optional[bytes]:
  try:
    return subprocess.run(["git", "-C", _PACKAGE_DIR, *args], capture_output=True,
                          check=True, timeout=30).stdout
  except (OSError, subprocess.SubprocessError):
    return None


def describe() -> dict:
  """{"git_commit", "git_dirty", "git_diff_sha256"}; None values outside git."""
  commit = _git("rev-parse", "HEAD")
  if commit is None:
    return {"git_commit": None, "git_dirty": None, "git_diff_sha256": None}
  diff = _git("diff", "HEAD", "--binary") or b""
  return {"git_commit": commit.decode().strip(), "git_dirty": bool(diff),
          "git_diff_sha256": hashlib.sha256(diff).hexdigest() if diff else None}


def difference(recorded: dict, current: dict) -> Optional[str]:
  """One line saying how the code (and plugins) differ from a recorded
  launch's; None when they are the same."""
  changes = []
  old, new = recorded.get("code", {}), current.get("code", {})
  if old.get("git_commit") != new.get("git_commit"):
    changes.append(f"commit {str(old.get('git_commit'))[:12]} -> "
                   f"{str(new.get('git_commit'))[:12]}")
  if old.get("git_diff_sha256") != new.get("git_diff_sha256"):
    changes.append("local changes " + ("differ" if new.get("git_dirty") or old.get("git_dirty")
                                       else "changed"))
  old_plugins, new_plugins = recorded.get("plugins", {}), current.get("plugins", {})
  for name in sorted(set(old_plugins) | set(new_plugins)):
    if old_plugins.get(name, {}).get("sha256") != new_plugins.get(name, {}).get("sha256"):
      changes.append(f"plugin {name} changed")
  return "; ".join(changes) or None
