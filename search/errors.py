"""Errors a user can fix; the CLI prints them as one line and exits non-zero."""

from __future__ import annotations


class SearchError(RuntimeError):
    """A bad study name or preset, an unreachable storage, a study that cannot resume."""
