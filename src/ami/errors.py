"""The one exception type a user is meant to read: the CLI prints its message on one line."""


class AmiError(Exception):
    """A problem with the user's input or files, stated so that they can fix it."""
