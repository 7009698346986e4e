"""The local stack's errors: what the user can act on, and a signal turned into an exception."""

from __future__ import annotations


class StackError(Exception):
    """A failure the user can act on; `exit_code` is what `python -m local_aws` exits with."""

    def __init__(self, message: str, exit_code: int = 1):
        super().__init__(message)
        self.exit_code = exit_code


class Interrupted(BaseException):
    """SIGINT / SIGTERM / SIGHUP, turned into an exception so that everything started gets stopped."""
