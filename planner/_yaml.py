"""YAML input safety shared by the scenario loader and the rule files.

A YAML alias (``*name``) repeats an anchored node (``&name``); nested aliases
expand exponentially (the "billion laughs" document: 600 bytes that become
gigabytes when a walker visits every node).  Scenario and rule files never
need them, so `first_alias` finds the first one from the parser's event
stream, which does not expand anything, and the loaders refuse the file
before composing or constructing it.
"""

from __future__ import annotations

import yaml

__all__ = ["first_alias"]


def first_alias(text: str) -> tuple[int, str] | None:
    """``(line, name)`` of the first YAML alias in ``text`` (1-based line), or ``None``.

    ``None`` too when the text is not valid YAML: the loader's own parse
    then reports the syntax error with its line.
    """
    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, yaml.AliasEvent):
                return event.start_mark.line + 1, str(event.anchor)
    except yaml.YAMLError:
        return None
    return None
