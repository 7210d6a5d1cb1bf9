"""Figures as people read them."""
from __future__ import annotations


def human_bytes(n):
    """1234 -> '1.2 kB': B, kB, MB, GB (powers of 1000, as Finder and the tables say)."""
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return "{:.1f} {}".format(n / size, unit)
    return "{} B".format(int(n))
