"""The ``truepar`` command. It only calls the public API; exit codes are decided in ``main``."""

from truepar.cli.main import app, main

__all__ = ("app", "main")
