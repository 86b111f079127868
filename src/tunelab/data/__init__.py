"""The data stage: sources, formats, cleaning, deduplication, leak-free splits, quarantine and a report."""

from tunelab.data.errors import DataError

__all__ = ["DataError"]
