"""lrlab's error for a user's mistake in a config, spec or command line."""


class ConfigError(ValueError):
    """A user-supplied value is invalid; the message is one line naming the field, the value and what is allowed."""
