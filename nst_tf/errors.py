"""Error types raised by nst_tf.

Every error a user can trigger with a bad input is an :class:`NSTError`. Its
message is one line that names the problem and the fix, so the command line
can print it without a traceback (see ``nst_tf.cli``).
"""


class NSTError(Exception):
    """Base class of every error nst_tf raises on purpose."""


class ImageError(NSTError, ValueError):
    """An image file or array that cannot be used (missing, corrupt, too small...)."""


class ConfigError(NSTError, ValueError):
    """A setting that is invalid (unknown layer, negative weight, zero steps...)."""


class WeightsError(NSTError, RuntimeError):
    """No usable VGG19 weights could be found, decoded or downloaded."""


class DownloadError(NSTError, RuntimeError):
    """A download failed, was too large, or did not match its checksum."""


class NonFiniteLossError(NSTError, FloatingPointError):
    """The loss became NaN or infinite during optimisation."""


class OutputError(NSTError, OSError):
    """A result could not be written (no space, read-only folder, a file in the way...).

    An OSError too, so code that catches OSError around a save keeps working.
    """
