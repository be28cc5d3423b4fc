"""The root of every error finflows raises on purpose.

``FinflowsError`` is what a caller catches to mean "finflows refused or could not do this", never
a Python or library error by accident. Each error keeps the built-in type it always had as a
second base (``FormatError`` is still a ``ValueError``, ``TransferError`` a ``RuntimeError``), so
nothing that caught those changes meaning. No import here: every layer may use it.
"""

from __future__ import annotations


class FinflowsError(Exception):
    """Raised by finflows on purpose: a refused input, a refused configuration, a transfer that
    must stop, a state that moved on."""
