"""The error type for mistakes a user can fix: a bad config or flag, missing
or damaged data, a missing checkpoint, an occupied workdir.

Entry points (`gan_jax.cli.run`) end on a `UserError` with exit status 2 and
its message as one line on stderr; any other exception is a bug and keeps
its traceback. Raise it with a message that says what to do.
"""


class UserError(Exception):
  """A problem the user caused and can fix; the message says how."""
