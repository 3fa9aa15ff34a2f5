"""The data layer's exceptions: one base class, so callers can catch every data problem at once."""

from __future__ import annotations


class DatasetError(Exception):
    """Base class of every data-layer error: something is missing, corrupt or malformed."""


class ChecksumError(DatasetError):
    """A file's hash differs from the registry's; the file has been removed."""


class DownloadError(DatasetError):
    """A download failed (HTTP error, refused connection, cut-off transfer)."""


class DatasetNotAvailableError(DatasetError):
    """No source could provide the files (typically: offline and nothing cached)."""


class MalformedDataError(DatasetError):
    """A file has the right name but not the expected content (columns, shape, format)."""


class UnsafeArchiveError(DatasetError):
    """An archive member would be written outside the extraction folder."""
