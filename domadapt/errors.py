"""The one exception type domadapt raises for bad data, bad configuration and bad names."""


class DomadaptError(ValueError):
    """A user-facing error: one line naming the file / setting and what was expected."""
