"""Errors caused by the user's input (files, fields, arguments).

Every validator in kpose raises a subclass of :class:`KposeError` with a message that names
the file, field or argument at fault; the CLI prints such errors as one line, no traceback.
"""


class KposeError(ValueError):
    """Bad input: the message says which file, field or argument and why."""


class SchemaError(KposeError):
    """A keypoint schema is malformed."""


class AnnotationError(KposeError):
    """An annotation, detection or results file is malformed."""


class ConfigError(KposeError):
    """A configuration file or command-line argument is invalid."""


class TrainingError(KposeError):
    """A run cannot go on, or what it trained is unusable (no data decoded, a NaN loss)."""
