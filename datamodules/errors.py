"""The data modules' error, importable without torch or Lightning (the CLI catches it on every command)."""


class DataError(Exception):
    """Data could not be found or loaded; the message says what to do."""
