"""Exceptions with one-line, user-facing messages.

The CLI prints ``str(error)`` for any :class:`VosbenchError` as a single line and exits non-zero;
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class VosbenchError(Exception):
    """Base class: an error caused by the user's input or environment, with a one-line message."""


class DataError(VosbenchError):
    """A dataset, mask, frame or archive is missing, malformed or inconsistent."""


class ConfigError(VosbenchError):
    """A config file or option is invalid (unknown key, bad value, unknown preset)."""


class CheckpointError(VosbenchError):
    """A checkpoint is missing, unreadable, or does not match the requested architecture."""


class DownloadError(VosbenchError):
    """A download failed, or its size/checksum does not match."""


class NumericalError(VosbenchError):
    """A model produced non-finite values (NaN or inf) from finite inputs."""
