"""The one error tree of truepar.

::

    TrueparError
    ├── BadInput (ValueError)           the user gave us something unusable → exit 2
    │   ├── PlanError                   a plan file or Plan object is invalid (file, op id, field)
    │   └── UsageError                  a flag or argument is invalid
    ├── BackendUnavailable (ImportError)  an optional backend's dependency is missing
    ├── LedgerBusy                      the evidence ledger stayed locked by other writers
    ├── BudgetError                     a live rate budget is too small for the run, or unreadable
    ├── OpError                         an op failed while running (its span says `failed`)
    │   ├── ConfinementError            a file tool tried to leave the plan's root
    │   ├── ThrottledError              the op's server answered 429/503 (Too Many Requests)
    │   └── NotPicklableError (TypeError)  an op cannot be sent to a worker process
    └── InternalError (RuntimeError)    a bug in truepar itself; please report it

    TrueparWarning (UserWarning)        not an error: the run goes on (a clamped worker count)
    Terminated (KeyboardInterrupt)      SIGTERM when a run could not stop cleanly → exit 143

Everything the CLI maps to an exit code is decided in one place, ``truepar.cli.main``:
``BadInput`` → 2, everything else that escapes → 1.
"""

from __future__ import annotations


class TrueparError(Exception):
    """Base class of every error truepar raises on purpose."""


class BadInput(TrueparError, ValueError):
    """Input the user can fix: the message names what to fix, in one line."""


class PlanError(BadInput):
    """A plan is invalid. The message names the file, the op id and the field."""


class UsageError(BadInput):
    """A command-line flag or API argument is invalid."""


class BackendUnavailable(TrueparError, ImportError):
    """A backend was asked for that cannot run here (unknown, or missing a dependency)."""


class LedgerBusy(TrueparError):
    """The evidence ledger stayed locked by other writers for longer than we wait."""


class BudgetError(TrueparError):
    """A provider's live budget (GitHub's ``remaining``) cannot cover the run under its policy,
    or could not be read. Not bad input: the same plan runs once the budget refills → exit 1."""


class OpError(TrueparError):
    """An op failed. Raised inside tools; the scheduler records it on the op's span."""


class ConfinementError(OpError):
    """A file tool was asked for a path outside the plan's root (``..`` or a symlink out)."""


class ThrottledError(OpError):
    """An op failed after its server throttled it (429 or 503): ``throttled`` answers in all,
    which an ``adaptive`` resource reads as a signal to lower its concurrency."""

    def __init__(self, message: str, throttled: int) -> None:
        super().__init__(message)
        self.throttled = throttled

    def __reduce__(self) -> tuple[type[ThrottledError], tuple[str, int]]:
        return (type(self), (str(self), self.throttled))


class NotPicklableError(OpError, TypeError):
    """An op (its function, arguments or result) cannot cross into a worker process."""


class InternalError(TrueparError, RuntimeError):
    """Something that should be impossible happened: this is truepar's bug."""


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived where a run could not stop cleanly (a second signal, or before it
    started): what ``KeyboardInterrupt`` is to Ctrl-C. The CLI exits 143 for it, not 130."""


class TrueparWarning(UserWarning):
    """Something to know that does not stop the run (more workers asked for than can start).

    Issued with :func:`warnings.warn`; the CLI prints it as one ``truepar: warning:`` line.
    """
