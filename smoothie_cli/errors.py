"""The one exception type for problems a user can fix."""


class SmoothieError(Exception):
    """A user-fixable problem: the CLI prints it as one line and exits with code 2."""
