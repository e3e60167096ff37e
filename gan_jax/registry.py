"""Named registries: how losses, models, datasets and optimizers are looked up.

A registry maps a name to an object. Looking up an unknown name raises a
`ConfigError` that lists every valid name, so a typo in a config fails at once
with the fix in the message.
"""

from __future__ import annotations

from typing import Callable, Generic, Iterator, TypeVar

from gan_jax.errors import UserError

T = TypeVar("T")


class ConfigError(UserError, ValueError):
  """A config value that cannot be run (unknown name, impossible shape...)."""


def check_options(owner: str, given: set[str], valid: set[str]) -> None:
  """Refuses option names that `owner` does not declare, listing the valid ones."""
  unknown = sorted(set(given) - set(valid))
  if unknown:
    raise ConfigError(f"{owner} has no option(s) {', '.join(unknown)}. "
                      f"Valid options: {', '.join(sorted(valid)) or 'none'}.")


class Registry(Generic[T]):
  """A name -> object table for one kind of component."""

  def __init__(self, kind: str):
    self.kind = kind
    self._entries: dict[str, T] = {}

  def register(self, name: str) -> Callable[[T], T]:
    def decorator(entry: T) -> T:
      if name in self._entries:
        raise ValueError(f"{self.kind} '{name}' is already registered.")
      self._entries[name] = entry
      return entry

    return decorator

  def get(self, name: str) -> T:
    if name not in self._entries:
      raise ConfigError(
          f"Unknown {self.kind} '{name}'. Valid names: {', '.join(self.names())}."
      )
    return self._entries[name]

  def names(self) -> list[str]:
    return sorted(self._entries)

  def __contains__(self, name: str) -> bool:
    return name in self._entries

  def __iter__(self) -> Iterator[str]:
    return iter(self.names())
