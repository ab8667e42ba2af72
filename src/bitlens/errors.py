"""The one exception type the library raises for problems a user can act on."""


class BitlensError(Exception):
    """A user-facing error: the CLI prints its message on one line and exits non-zero."""
