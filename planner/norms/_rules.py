"""Rule files: reading, validating, inheriting (``extends``) and filtering by plan year.

A rule file is YAML with a top-level ``jurisdiction`` ({zh, en}), an optional
``extends`` (a shipped rule-set name or a path relative to the file) and a
``rules`` list.  A child file's rule with the same ``id`` as a parent's
replaces the parent's fields it names (the others are inherited);
``enabled: false`` drops a parent rule.  Every problem of a file is
collected and raised once as a `NormsError` naming the file, the rule (id
or index) and the field.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from planner import defaults as D
from planner._errors import NormsError, collect
from planner._schema import TIERS
from planner._yaml import first_alias

__all__ = [
    "MEASURES", "RULES_DIR", "SCOPES", "TOWNSHIP_KINDS", "MeasureSpec", "Rule", "RuleSet",
    "is_rule_file", "load_rules", "shipped_rule_sets",
]

#: Folder holding the shipped rule files.
RULES_DIR = Path(__file__).parent

SCOPES: tuple[str, ...] = ("district", "township", "community", "facility")

#: Values of a rule's ``township_kind``: urban subdistricts (街道) or towns (镇/乡).
TOWNSHIP_KINDS: tuple[str, ...] = ("subdistrict", "town")

#: Measures a ``township_kind`` applies to.
_KIND_MEASURES: tuple[str, ...] = ("township_centre_count", "township_centre_coverage")


@dataclass(frozen=True)
class MeasureSpec:
    """What a measure needs from a rule: allowed scopes, a share in [0, 1], a tier."""

    scopes: tuple[str, ...]
    share: bool = False
    tier: bool = False


#: Every measure `planner.norms.check` implements (see ``_checks.py``).
MEASURES: dict[str, MeasureSpec] = {
    "land_per_resident": MeasureSpec(("district", "township")),
    "community_floor_per_100_households": MeasureSpec(("community",)),
    "facility_floor_area": MeasureSpec(("facility",), tier=True),
    "facility_beds": MeasureSpec(("facility",), tier=True),
    "facility_nursing_share": MeasureSpec(("facility",), share=True, tier=True),
    "community_station_count": MeasureSpec(("community",)),
    "township_centre_count": MeasureSpec(("township",)),
    "public_home_count": MeasureSpec(("district",)),
    "public_beds_share": MeasureSpec(("district", "township"), share=True),
    "nursing_bed_share": MeasureSpec(("district", "township"), share=True),
    "coverage_15min": MeasureSpec(("district", "township"), share=True),
    "township_centre_coverage": MeasureSpec(("district",), share=True),
    "community_station_coverage": MeasureSpec(("district", "township"), share=True),
    "beds_per_1000_older": MeasureSpec(("district", "township")),
    "social_workers_per_1000_older": MeasureSpec(("district", "township")),
    "social_workers_per_100_beds": MeasureSpec(("district", "township")),
}


@dataclass(frozen=True)
class Rule:
    """One checkable norm.

    ``threshold`` is a lower bound in the measure's own unit (shares are
    fractions: 0.55 = 55 %).  ``tier`` names the facility tier that
    facility-scope and floor-space measures look at.  ``township_kind``
    (``subdistrict`` 街道 or ``town`` 镇/乡) limits the township-centre
    measures to that kind of township (see `TOWNSHIP_KINDS`).  ``minutes`` is the
    walking time of coverage measures.  ``secondary`` flags rules taken from
    secondary sources (quotes, summaries) rather than the official text.
    """

    id: str
    title: dict[str, str]
    measure: str
    threshold: float
    unit: str
    scope: str
    applies_from: int
    source: str
    clause: str
    tier: str | None = None
    township_kind: str | None = None
    minutes: float = D.CIRCLE_MIN
    applies_until: int | None = None
    quote: str = ""
    note: str = ""
    secondary: bool = False
    file: str = ""

    def title_in(self, lang: str) -> str:
        """The rule's title in ``lang`` (falls back to the other language)."""
        return self.title.get(lang) or self.title.get("zh") or self.title.get("en") or self.id

    def applies_in(self, year: int) -> bool:
        """Whether the rule is in force in plan year ``year``."""
        return self.applies_from <= year and (self.applies_until is None
                                              or year <= self.applies_until)


@dataclass
class RuleSet:
    """The rules of one jurisdiction, after inheritance and plan-year filtering.

    Attributes
    ----------
    rules
        The rules in file order (parents' first, children's overrides in place).
    jurisdiction
        ``{"zh": ..., "en": ...}`` of the most specific file.
    files
        The rule files read, most specific first.
    plan_year
        The plan year the rules were filtered for (``None``: not filtered).
    """

    rules: list[Rule]
    jurisdiction: dict[str, str]
    files: list[Path] = field(default_factory=list)
    plan_year: int | None = None

    def __len__(self) -> int:
        return len(self.rules)

    def __iter__(self):
        return iter(self.rules)

    def __getitem__(self, rule_id: str) -> Rule:
        for r in self.rules:
            if r.id == rule_id:
                return r
        raise KeyError(f"no rule with id {rule_id!r}; ids: {', '.join(r.id for r in self.rules)}")

    def to_frame(self, *, lang: str = "zh"):
        """The rules as a DataFrame (one row per rule), handy in notebooks."""
        import pandas as pd

        return pd.DataFrame(
            [
                {
                    "rule_id": r.id, "title": r.title_in(lang), "measure": r.measure,
                    "scope": r.scope, "threshold": r.threshold, "unit": r.unit,
                    "tier": r.tier, "applies_from": r.applies_from, "source": r.source,
                    "clause": r.clause, "secondary": r.secondary,
                }
                for r in self.rules
            ]
        )

    def __repr__(self) -> str:
        year = f", plan year {self.plan_year}" if self.plan_year else ""
        return f"<RuleSet {self.jurisdiction.get('en', '?')}: {len(self.rules)} rules{year}>"


_RULE_FIELDS = {f.name for f in fields(Rule)} - {"file"} | {"enabled"}
_REQUIRED = ("id", "title", "measure", "threshold", "unit", "scope", "applies_from", "source",
             "clause")
_TOP_KEYS = {"jurisdiction", "extends", "rules"}


def shipped_rule_sets() -> list[str]:
    """Names of the rule files shipped with `planner` (``national``, ``xian_2021`` ...)."""
    return sorted(p.stem for p in RULES_DIR.glob("*.yaml"))


def is_rule_file(text: str) -> bool:
    """Whether a rule-set argument is a file path (``.yaml`` / ``.yml``, or with a folder)."""
    return text.endswith((".yaml", ".yml")) or "/" in text or "\\" in text


def _resolve(name_or_path: str | Path, *, base: Path | None = None) -> Path:
    text = str(name_or_path)
    if not is_rule_file(text):
        path = RULES_DIR / f"{text}.yaml"
        if path.is_file():
            return path
        raise NormsError(
            f"Unknown rule set {text!r}. Use a shipped one ({', '.join(shipped_rule_sets())}) "
            "or the path of your own .yaml rule file (copy a shipped one from "
            f"{RULES_DIR} and edit it)."
        )
    path = Path(text).expanduser()
    if not path.is_absolute() and base is not None:
        path = base / path
    if not path.is_file():
        raise NormsError(
            f"Rule file {path} does not exist. Give an existing .yaml path (relative paths are "
            f"relative to the scenario or parent rule file), or a shipped name: "
            f"{', '.join(shipped_rule_sets())}."
        )
    return path


def _read(path: Path) -> dict:
    try:
        text = path.read_text(encoding="utf-8")
        if (alias := first_alias(text)) is not None:
            raise NormsError(
                f"Rule file {path} uses a YAML alias (`*{alias[1]}` at line {alias[0]}); "
                "aliases and anchors (`&name`) are not allowed in a rule file, since nested ones "
                "can expand to gigabytes. Write each rule's fields out in full."
            )
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise NormsError(f"Rule file {path} is not valid YAML{where}: {exc}") from None
    except UnicodeDecodeError:
        raise NormsError(f"Rule file {path} is not UTF-8 text; save it as UTF-8.") from None
    if not isinstance(data, dict):
        raise NormsError(
            f"Rule file {path} must be a YAML mapping with `jurisdiction:` and `rules:` "
            f"(got {type(data).__name__})."
        )
    return data


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _check_title(v: Any) -> str | None:
    if not isinstance(v, dict) or not v.get("zh") or not v.get("en"):
        return f"must be a mapping with `zh` and `en` texts, got {v!r}"
    if not all(isinstance(x, str) for x in v.values()):
        return f"texts must be strings, got {v!r}"
    return None


def _validate_rule(raw: dict, where: str, problems: list[str]) -> None:
    """Append to ``problems`` everything wrong with one complete rule."""
    measure = raw.get("measure")
    spec = MEASURES.get(measure) if isinstance(measure, str) else None
    for msg in (*_field_problems(raw), *_measure_problems(raw, spec),
                *_threshold_problems(raw, spec), *_year_problems(raw),
                *_tier_problems(raw, spec), *_flag_problems(raw)):
        problems.append(f"{where}: {msg}")


def _field_problems(raw: dict) -> Iterator[str]:
    """Missing and unknown fields, the title and the text fields."""
    for key in _REQUIRED:
        if raw.get(key) is None:
            yield f"field `{key}` is missing"
    for key in sorted(set(raw) - _RULE_FIELDS):
        yield f"field `{key}` is unknown; allowed: {', '.join(sorted(_RULE_FIELDS))}"
    if raw.get("title") is not None and (msg := _check_title(raw["title"])):
        yield f"field `title` {msg}"
    for key in ("id", "unit", "source", "clause", "quote", "note"):
        v = raw.get(key)
        if v is not None and not isinstance(v, str):
            yield f"field `{key}` must be text, got {v!r}"


def _measure_problems(raw: dict, spec: MeasureSpec | None) -> Iterator[str]:
    """The measure, and the scope it is checked by."""
    measure = raw.get("measure")
    if measure is not None and spec is None:
        yield f"field `measure`: unknown measure {measure!r}; known: {', '.join(MEASURES)}"
    scope = raw.get("scope")
    if scope is not None:
        if scope not in SCOPES:
            yield f"field `scope`: {scope!r} is not one of {', '.join(SCOPES)}"
        elif spec is not None and scope not in spec.scopes:
            yield (f"field `scope`: measure {measure!r} is checked by "
                   f"{' or '.join(spec.scopes)}, not {scope!r}")


def _threshold_problems(raw: dict, spec: MeasureSpec | None) -> Iterator[str]:
    thr = raw.get("threshold")
    if thr is not None:
        if not _is_number(thr) or thr < 0:
            yield f"field `threshold` must be a non-negative number, got {thr!r}"
        elif spec is not None and spec.share and thr > 1:
            yield (f"field `threshold` of share measure {raw.get('measure')!r} must be a "
                   f"fraction in [0, 1] (write 55 % as 0.55), got {thr!r}")


def _year_problems(raw: dict) -> Iterator[str]:
    for key in ("applies_from", "applies_until"):
        v = raw.get(key)
        if v is not None and (not isinstance(v, int) or isinstance(v, bool)
                              or not 1900 <= v <= 2200):
            yield f"field `{key}` must be a year such as 2025, got {v!r}"


def _tier_problems(raw: dict, spec: MeasureSpec | None) -> Iterator[str]:
    """The facility tier and the township kind."""
    measure = raw.get("measure")
    tier = raw.get("tier")
    if tier is not None and tier not in TIERS:
        yield f"field `tier`: {tier!r} is not one of {', '.join(TIERS)}"
    if spec is not None and spec.tier and tier is None:
        yield f"field `tier` is missing (measure {measure!r} needs the facility tier)"
    kind = raw.get("township_kind")
    if kind is not None:
        if kind not in TOWNSHIP_KINDS:
            yield f"field `township_kind`: {kind!r} is not one of {', '.join(TOWNSHIP_KINDS)}"
        elif measure not in _KIND_MEASURES:
            yield (f"field `township_kind` applies only to the measures "
                   f"{', '.join(_KIND_MEASURES)}, not {measure!r}")


def _flag_problems(raw: dict) -> Iterator[str]:
    """``minutes`` and the true/false fields."""
    minutes = raw.get("minutes")
    if minutes is not None and (not _is_number(minutes) or minutes <= 0):
        yield f"field `minutes` must be a positive number, got {minutes!r}"
    for key in ("secondary", "enabled"):
        v = raw.get(key)
        if v is not None and not isinstance(v, bool):
            yield f"field `{key}` must be true or false, got {v!r}"


def _load_file(path: Path, stack: tuple[Path, ...]) -> tuple[dict[str, dict], dict, list[Path]]:
    """Rules (id -> raw mapping, merged with parents), jurisdiction and files of one file."""
    if path.resolve() in stack:
        chain = " -> ".join(str(p) for p in (*stack, path.resolve()))
        raise NormsError(f"Rule file {path}: field `extends` makes a cycle ({chain}); "
                         "remove one `extends`.")
    data = _read(path)
    problems: list[str] = []
    jur, raw_rules = _top_level(data, problems)
    ext = data.get("extends")
    parent_rules, parent_files = _load_parent(ext, path, stack, problems)
    merged = _merge_rules(raw_rules, parent_rules, ext=ext, path=path, problems=problems)
    collect(problems, header=f"Rule file {path} is not valid:", error=NormsError)
    return merged, jur, [path, *parent_files]


def _top_level(data: dict, problems: list[str]) -> tuple[Any, list]:
    """A file's ``jurisdiction`` and ``rules`` list (``[]`` when unusable), checked."""
    for key in sorted(set(data) - _TOP_KEYS):
        problems.append(f"top-level field `{key}` is unknown; allowed: "
                        f"{', '.join(sorted(_TOP_KEYS))}")
    jur = data.get("jurisdiction")
    if jur is None:
        problems.append("top-level field `jurisdiction` is missing (e.g. "
                        "`jurisdiction: {zh: 西安市, en: Xi'an}`)")
    elif msg := _check_title(jur):
        problems.append(f"top-level field `jurisdiction` {msg}")
    raw_rules = data.get("rules")
    if raw_rules is None:
        problems.append("top-level field `rules` is missing (a list of rules, may be empty `[]`)")
        raw_rules = []
    elif not isinstance(raw_rules, list):
        problems.append(f"top-level field `rules` must be a list, got {type(raw_rules).__name__}")
        raw_rules = []
    return jur, raw_rules


def _load_parent(ext: Any, path: Path, stack: tuple[Path, ...],
                 problems: list[str]) -> tuple[dict[str, dict], list[Path]]:
    """Rules and files of the rule set a file ``extends`` (none without a usable one)."""
    if ext is None:
        return {}, []
    if not isinstance(ext, str) or not ext:
        problems.append(f"top-level field `extends` must be a rule-set name or path, got {ext!r}")
        return {}, []
    try:
        parent_path = _resolve(ext, base=path.parent)
    except NormsError as exc:
        problems.append(f"top-level field `extends`: {exc}")
        return {}, []
    parent_rules, _, parent_files = _load_file(parent_path, (*stack, path.resolve()))
    return parent_rules, parent_files


def _merge_rules(raw_rules: list, parent_rules: dict[str, dict], *, ext: Any, path: Path,
                 problems: list[str]) -> dict[str, dict]:
    """The parent's rules with this file's rules applied (replacing, completing, dropping)."""
    merged = {k: dict(v) for k, v in parent_rules.items()}
    seen: set[str] = set()
    for i, raw in enumerate(raw_rules):
        if not isinstance(raw, dict):
            problems.append(f"rule #{i + 1}: must be a mapping of fields, got {raw!r}")
            continue
        rid = raw.get("id")
        where = f"rule `{rid}` (#{i + 1})" if isinstance(rid, str) else f"rule #{i + 1}"
        if not isinstance(rid, str) or not rid:
            problems.append(f"{where}: field `id` is missing or not text (got {rid!r})")
            continue
        if rid in seen:
            problems.append(f"{where}: field `id`: {rid!r} appears twice in this file")
            continue
        seen.add(rid)
        if raw.get("enabled") is False:
            merged.pop(rid, None)
            continue
        if rid not in merged and ext and any(raw.get(k) is None for k in _REQUIRED):
            problems.append(
                f"{where}: no rule with id {rid!r} in the parent rule set `{ext}` to inherit "
                "fields from, so every field must be given (or fix the id)"
            )
        full = {**merged.get(rid, {}), **raw, "file": str(path)}
        full.pop("enabled", None)
        _validate_rule({k: v for k, v in full.items() if k != "file"}, where, problems)
        merged[rid] = full
    return merged


def _none_in_force(rules: list[Rule], plan_year: int, path: Path) -> str:
    """Why no rule of a non-empty rule set is in force in ``plan_year``, and the fix."""
    first = min(r.applies_from for r in rules)
    ends = [r.applies_until for r in rules]
    if plan_year < first:
        when = (f"every rule applies from {first} or later (the earliest `applies_from`). "
                f"Set the plan year (`norms.plan_year`) to {first} or later")
    else:
        last = max(e for e in ends if e is not None)
        when = (f"every rule ended by {last} (the latest `applies_until`). Set the plan year "
                f"(`norms.plan_year`) to {last} or earlier")
    return (f"No rule of rule set {path.stem} ({path}) applies in plan year {plan_year}: "
            f"{when}, or choose a rule set in force in {plan_year}.")


def load_rules(name_or_path: str | Path, *, plan_year: int | None = None) -> RuleSet:
    """Read a rule set: a shipped jurisdiction name or the path of a YAML rule file.

    Parameters
    ----------
    name_or_path
        ``"national"``, ``"shaanxi_2023"``, ``"xian_2021"``, ``"sucheng_2024"``,
        ``"shanxi_2023"``, ``"henan_2023"``, or a path to your own ``.yaml``
        (copy a shipped file and edit it; ``extends:`` may name a shipped set).
    plan_year
        Keep only the rules in force in this year (``applies_from`` ≤ year ≤
        ``applies_until``); ``None`` keeps every rule.  A year in which no rule
        of a non-empty rule set is in force is an error (a check would
        otherwise pass with nothing checked).

    Returns
    -------
    RuleSet

    Raises
    ------
    NormsError
        Unknown name, missing file, or a malformed file: the message names
        the file, each rule (id or index) and field that is wrong.  Also
        when no rule is in force in ``plan_year`` (naming the earliest
        ``applies_from``).

    Examples
    --------
    >>> rules = load_rules("xian_2021", plan_year=2025)
    >>> rules["nursing_bed_share"].threshold
    0.6
    """
    path = _resolve(name_or_path)
    merged, jur, files = _load_file(path, ())
    rules = []
    for raw in merged.values():
        kwargs = {k: v for k, v in raw.items() if k in _RULE_FIELDS and k != "enabled"}
        kwargs["threshold"] = float(kwargs["threshold"])
        if kwargs.get("minutes") is not None:
            kwargs["minutes"] = float(kwargs["minutes"])
        rules.append(Rule(**kwargs, file=raw["file"]))
    if plan_year is not None:
        in_force = [r for r in rules if r.applies_in(plan_year)]
        if rules and not in_force:
            raise NormsError(_none_in_force(rules, plan_year, path))
        rules = in_force
    return RuleSet(rules=rules, jurisdiction=dict(jur), files=files, plan_year=plan_year)
