"""``python -m truepar`` — the same as the ``truepar`` command."""

from truepar.cli import main

if __name__ == "__main__":
    main()
