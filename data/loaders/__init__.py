"""Loaders: each source becomes `Record`s plus a report of what was read, cleaned and refused."""

from data.loaders.common import BadRow, DataFileError, LoadReport, LoadResult
from data.loaders.export import load_export
from data.loaders.public import SEVERITY, SOURCES, load_public
from data.loaders.seed import load_seed

PUBLIC_NAMES = (*SOURCES, SEVERITY)

__all__ = [
    "PUBLIC_NAMES",
    "BadRow",
    "DataFileError",
    "LoadReport",
    "LoadResult",
    "load_export",
    "load_public",
    "load_seed",
]
