"""The one exception family the command line turns into a one-line error (no traceback)."""


class GexnetError(Exception):
    """A problem with the user's input or configuration; the message says which and why."""
