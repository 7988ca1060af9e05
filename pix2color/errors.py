"""Errors a user can fix: the CLIs print their message as one line and exit with code 2."""


class UserError(Exception):
    """Bad input the user can fix; the message is one sentence naming the file, key or value."""


class ConfigError(UserError):
    """An unknown key, a wrong type or an invalid value in a config file or a ``--set`` override."""


class DataError(UserError):
    """Image data that cannot be used: no images, too many unreadable files, an image too large."""


class CheckpointError(UserError):
    """A checkpoint that is missing, truncated, unsafe or built for another architecture."""


class TrainingStopped(UserError):
    """Training stopped on a fault (a NaN or Inf loss); the last good checkpoint is kept."""
