"""The one exception family the command line turns into a one-line error (no traceback), and
how any other exception becomes part of such a line."""


class GexnetError(Exception):
    """A problem with the user's input or configuration; the message says which and why."""


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type's name when it has none)."""
    # KeyError's str() adds quotes; h5py puts its message in args[0].
    text = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)
    text = text.strip()
    return text.splitlines()[0].strip() if text else type(exc).__name__
