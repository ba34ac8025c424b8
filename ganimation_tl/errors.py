"""User-facing errors.

Every problem caused by what a user supplied (a file, a CSV row, a flag, an image) is raised as
:class:`InputError`, with a message that names the culprit. The command-line entry points catch it,
print ``error: <message>`` to stderr and exit with status 2, so users never see a traceback from
deep inside TensorFlow for a bad input.
"""


class InputError(ValueError):
    """A problem with user input (file, row, field, flag, image) with a message that names it."""


class TrainingError(RuntimeError):
    """Training cannot go on (for example a loss became NaN or Inf); the message says why."""
