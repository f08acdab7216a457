"""Owns the single exception type of :mod:`bmoe.data`.

Every user-facing failure in this package (missing directory or file, corrupt or
truncated file, wrong magic number, wrong dimensions, label/image count mismatch,
unknown dataset name, invalid argument) is raised as :class:`DataError` whose
message is ONE line naming the dataset and the offending file or value.
"""

from __future__ import annotations


class DataError(Exception):
    """A dataset could not be located, parsed, validated or loaded."""
