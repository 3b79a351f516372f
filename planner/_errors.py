"""Exception and warning types of `planner`.

Every error the project raises on bad input subclasses a built-in
(`ValueError`, `FileNotFoundError`, ...) so that ``except ValueError`` keeps
working, and carries a message that says what is wrong, shows the bad value
and says how to fix it.
"""

from __future__ import annotations


class PlannerError(Exception):
    """Base class of every error raised by `planner` on purpose."""


class LayerError(PlannerError, ValueError):
    """A layer file or table cannot be used as given (wrong geometry, CRS, columns...)."""


class ScenarioError(PlannerError, ValueError):
    """A scenario file is malformed: unknown key, wrong type, missing file..."""


class NetworkError(PlannerError, ValueError):
    """A walk network cannot be built or used."""


class DemandError(PlannerError, ValueError):
    """Census tables or residential layers cannot be combined as asked."""


class LocateError(PlannerError, ValueError):
    """A location model is malformed (p too large, no candidates, bad costs...)."""


class NormsError(PlannerError, ValueError):
    """A rule file is malformed or a check cannot be evaluated."""


class OutputError(PlannerError, OSError):
    """An output cannot be written where asked (non-empty folder, input folder...)."""


class PlannerWarning(UserWarning):
    """A repair or an assumption the user should know about (never silent)."""


def collect(problems: list[str], *, header: str, error: type[PlannerError]) -> None:
    """Raise ``error`` once with every collected problem, if there are any.

    Validators gather all problems first and raise once (as OSMnx's
    ``_validate`` does), so a user fixes a file in one pass.
    """
    if problems:
        lines = "\n".join(f"  - {p}" for p in problems)
        raise error(f"{header}\n{lines}")


#: Exit codes of the command line: success, a failed run, bad input or usage.
EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2


def error_text(exc: BaseException) -> tuple[str, int]:
    """The message `planner run` prints for ``exc`` (without ``Error: ``) and its exit code.

    The project's own errors and missing files are bad input (their message
    as is, exit code 2); anything else is a failed run (its type and first
    line, with where to get the traceback, exit code 1).  `planner.batch`
    reports a failed part with the same text.
    """
    if isinstance(exc, (PlannerError, FileNotFoundError, PermissionError, IsADirectoryError)):
        return str(exc), EXIT_BAD_INPUT
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return (f"the run failed: {type(exc).__name__}: {first} "
            "(rerun with `planner --debug ...` for the traceback, and please report it)",
            EXIT_FAILED)
