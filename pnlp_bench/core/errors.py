"""The one error type the command line prints as a single line."""

from __future__ import annotations


class OneLineError(Exception):
    """A failure whose message alone says what went wrong and where (a file, a folder) and what to do.

    `bench` prints it as one line without a traceback: the traceback would only point into this package,
    while the cause (a full disk, a damaged file, a busy folder) lies outside it."""
