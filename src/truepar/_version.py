"""truepar's version: written here once; ``pyproject.toml`` reads it (``dynamic = ["version"]``)."""

__version__ = "0.1.0"
