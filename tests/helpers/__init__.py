"""What tests share: plan builders, the CLI runner, git, a local GitHub API. Imported as
``helpers.*`` (``tests`` is on ``sys.path``); the fixtures built on them are in ``conftest.py``."""
