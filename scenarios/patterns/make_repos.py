"""Make the git repositories the parallel-patterns examples work on (docs/parallel-patterns.md).

    python scenarios/patterns/make_repos.py [ROOT]

Creates, from scratch every time, one small project ("shop") per example under
``ROOT/.truepar/patterns/<example>/repo``: ``prs``, ``reviews``, ``files``, ``lint`` and
``context``. ROOT defaults to the folder that holds ``scenarios/`` (this project's root, however
the script is started), which is where the examples' swarm and plan files look for them. Any old
repository there is removed first, with its ``-worktrees`` sibling and its session logs, so an
example always shows the same outcome. Works without a git identity configured.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

EXAMPLES = ("prs", "reviews", "files", "lint", "context")
IDENTITY = ["-c", "user.name=patterns setup", "-c", "user.email=setup@localhost"]

FILES = {
    "README.md": "# shop\n\nA tiny shop: prices in cents, a cart.\n\n## Usage\n",
    "shop/__init__.py": '"""A tiny shop: prices in cents, a cart."""\n\n__version__ = "0.1.0"\n',
    "shop/prices.py": '''\
"""Prices. Money is kept in whole cents."""

TAX_RATE = 0.2


def with_tax(cents):
    """The price with tax, in cents."""
    return int(cents * (1 + TAX_RATE))  # BUG: truncates


def discount(cents, percent):
    """The price after a discount of ``percent`` per cent."""
    return cents - cents * percent // 100
''',
    "shop/cart.py": '''\
"""A shopping cart."""

from shop.prices import with_tax


class Cart:
    def __init__(self):
        self.items = []

    def add(self, name, cents, quantity=1):
        self.items.append((name, cents, quantity))

    def total(self):
        return sum(with_tax(c) for _n, c, _q in self.items)  # BUG: no quantity
''',
    "shop/stock.py": '''\
"""What is in stock."""

STOCK = {"pen": 12, "ink": 0, "pad": 3}


def available(name):
    """Whether ``name`` can be sold now."""
    return STOCK.get(name, 0) > 0


def restock(name, count):
    STOCK[name] = STOCK.get(name, 0) + count
''',
}


def make(folder: Path) -> Path:
    """A fresh repository with one commit on ``main`` in ``folder``."""
    shutil.rmtree(folder, ignore_errors=True)
    shutil.rmtree(folder.parent / f"{folder.name}-worktrees", ignore_errors=True)
    shutil.rmtree(folder.parent / "sessions", ignore_errors=True)
    folder.mkdir(parents=True)
    for name, text in FILES.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    env = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull}
    for args in (["init", "-q", "-b", "main"], ["add", "."], ["commit", "-q", "-m", "shop 0.1"]):
        subprocess.run(["git", *IDENTITY, *args], cwd=folder, check=True, env=env)
    return folder


def main(argv: list[str]) -> int:
    root = Path(argv[0]) if argv else Path(__file__).resolve().parents[2]
    for example in EXAMPLES:
        print(make(root.resolve() / ".truepar" / "patterns" / example / "repo"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
