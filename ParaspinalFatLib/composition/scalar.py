"""Any other map (FA, ADC, a T2 map...): statistics only, no fat / lean split.

Every voxel keeps the class code :data:`~.base.EXCLUDED`; only the statistics
of :data:`~.base.COMMON_COLUMNS` are filled, in the unit the user gives.
"""

from __future__ import annotations

from typing import ClassVar, Tuple

from .base import CompositionMethod

__all__ = ['ScalarMethod']


class ScalarMethod(CompositionMethod):
    """Statistics of a map without composition (map kind ``scalar``).

    Declares (class attributes): no ``columns`` besides the statistics; the
    ``unit`` is the user's (default ``""``); no ``params``.
    """

    kinds: ClassVar[Tuple[str, ...]] = ("scalar",)
