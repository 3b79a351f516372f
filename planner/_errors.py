"""Exception and warning types of `planner`.

Every error the project raises on bad input subclasses a built-in
(`ValueError`, `FileNotFoundError`, ...) so that ``except ValueError`` keeps
working, and carries a message that says what is wrong, shows the bad value
and says how to fix it.
"""

from __future__ import annotations

from collections.abc import Callable


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
    """A repair or an assumption the user should know about (never silent).

    It carries its text in both languages: ``str(w)`` is the English text
    (what a notebook shows, and what code matches on) and ``w.zh`` the
    Chinese one; `text` picks by ``lang``, which is how a run records its
    warnings in the scenario's language.  Library code issues it as
    ``warnings.warn(PlannerWarning(en, zh), stacklevel=...)``; a warning
    without ``zh`` is shown in English in both languages.
    """

    def __init__(self, message: str = "", zh: str | None = None):
        super().__init__(message)
        self.zh = zh

    def text(self, lang: str) -> str:
        """The warning in ``lang`` (``"zh"`` or ``"en"``; English where no Chinese is given)."""
        return self.zh if lang == "zh" and self.zh else str(self)


def text_of(message: Warning | str, lang: str) -> str:
    """A caught warning's text in ``lang`` (`PlannerWarning.text`; other warnings as they are)."""
    if isinstance(message, PlannerWarning):
        return message.text(lang)
    return str(message)


def reworded(message: Warning | str, *, en: Callable[[str], str],
             zh: Callable[[str], str]) -> PlannerWarning:
    """A caught warning with more context, for re-issuing: ``en`` / ``zh`` turn its English /
    Chinese text into the new one (``en=lambda t: f"Layer x: {t}"``)."""
    return PlannerWarning(en(str(message)), zh(text_of(message, "zh")))


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
