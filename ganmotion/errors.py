"""The one error type that crosses the library's edge.

Library code raises `GanmotionError` with a message a user can act on; each command-line
entry point catches it, prints that one line and exits non-zero.
"""


class GanmotionError(Exception):
    """A problem with the user's input or environment, explained in one line."""
