"""Errors the lab raises: each one a sentence a person can act on."""

from __future__ import annotations


class LabError(RuntimeError):
    """Something the lab needs is missing or did not come up; the message says what to do."""
