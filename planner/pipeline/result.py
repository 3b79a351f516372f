"""`RunResult`: everything a run produced, as data, and `StepRecord`."""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from planner._errors import OutputError
from planner.pipeline.settings import Scenario

__all__ = ["TEMP_NAME", "Preloaded", "RunResult", "StepRecord"]

#: Names of the temporary files `RunResult.write` makes (``.tmp-``, ``tempfile.mkstemp``'s
#: random characters, the suffix of an output a run writes) and their SQLite side files; a
#: run that was killed leaves them, and the next run into the folder removes them (nothing
#: else: a user's ``.tmp-notes.txt`` stays).
TEMP_NAME = re.compile(r"\.tmp-[a-z0-9_]+\.(gpkg|csv|json|html|xlsx|png|svg)(-journal|-wal|-shm)?")


@dataclass
class Preloaded:
    """Inputs already in memory that a run uses instead of reading the scenario's files.

    `planner.batch` runs each part of a province this way: its workers read
    the province's files once and hand every part its cut.

    Attributes
    ----------
    layers
        Scenario layer name (``population``, ``facilities``, ...,
        ``facilities_nearby``) -> GeoDataFrame as the layers step would have
        read it (canonical columns), all in ``crs``.  A name given here is
        used even where the scenario has no such layer.
    crs
        The study CRS of those layers (metric).
    network
        Road centre lines (a GeoDataFrame, for ``network.source: lines``) to
        build the walk network from, or a built `planner.network.WalkNetwork`.
    tables
        ``census`` / ``census_previous``: census tables as
        `planner.demand.read_census` returns them.
    input_hashes
        The inputs' SHA-256 as ``hash_inputs`` records them (no hashing again).
    record
        Extra entries for ``run.json`` (e.g. which part of a batch this is).
    """

    layers: dict[str, Any] = field(default_factory=dict)
    crs: Any = None
    network: Any = None
    tables: dict[str, Any] = field(default_factory=dict)
    input_hashes: dict[str, dict[str, Any]] | None = None
    record: dict[str, Any] = field(default_factory=dict)


@dataclass
class StepRecord:
    """What happened to one step of a run."""

    name: str
    status: str  # "done" | "skipped" | "failed" | "interrupted"
    seconds: float = 0.0
    reason: str = ""


@dataclass
class RunResult:
    """Everything a run produced, as data.

    ``layers`` holds GeoDataFrames (inputs in the study's metric CRS, and
    results such as ``population_access`` or ``service_areas``); ``tables``
    holds DataFrames (``coverage``, ``norm_checks``, ``proposed_sites`` ...);
    ``artifacts`` holds other objects (the walk network, folium maps, model
    results).  ``steps`` records what ran and what was skipped and why;
    ``warnings`` every repair or assumption made on the way; ``inputs`` the
    SHA-256 of every input file; ``files`` what was written to ``out_dir``.
    In Jupyter the result shows itself as a summary table.
    """

    scenario: Scenario
    layers: dict[str, Any] = field(default_factory=dict)
    tables: dict[str, Any] = field(default_factory=dict)
    artifacts: dict[str, Any] = field(default_factory=dict)
    steps: list[StepRecord] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    crs: Any = None
    out_dir: Path | None = None
    files: list[Path] = field(default_factory=list)
    inputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    progress: bool = False
    preloaded: Preloaded | None = field(default=None, repr=False)
    _collecting: bool = field(default=False, repr=False)

    @property
    def lang(self) -> str:
        return self.scenario.lang

    def bar_label(self, key: str) -> bool | str:
        """What a library's ``progress=`` option gets: ``False`` when the run shows no
        progress, else the label of the bar in the run's language."""
        if not self.progress:
            return False
        from planner.pipeline.texts import BAR_LABELS

        return BAR_LABELS.get(self.lang, BAR_LABELS["en"]).get(key, key)

    def warn(self, en: str, zh: str) -> None:
        """Record a warning for the run (in its language) and issue it as a `PlannerWarning`
        with both texts."""
        import warnings

        from planner._errors import PlannerWarning

        w = PlannerWarning(en, zh)
        if not self._collecting:  # inside run() the step's warnings are collected there
            self.warnings.append(w.text(self.lang))
        warnings.warn(w, stacklevel=2)

    def study(self):
        """The run's layers and tables as a `planner.study.Study`, to draw or report.

        ``plots.coverage_map(result.study())``, ``maps.web_map(result.study())``,
        ``report.indicators(result.study())``.
        """
        from planner.pipeline.presenting import study_of

        return study_of(self)

    def step(self, name: str) -> StepRecord | None:
        """The record of step ``name`` (``None`` if it has not run)."""
        return next((s for s in self.steps if s.name == name), None)

    def summary(self):
        """A small DataFrame: steps with status, seconds and reason."""
        import pandas as pd

        return pd.DataFrame([s.__dict__ for s in self.steps],
                            columns=["name", "status", "seconds", "reason"])

    def write(self, name: str, writer: Callable[[Path], None]) -> Path | None:
        """Write an output file atomically into ``out_dir`` (no-op without one).

        ``writer`` receives a temporary path in the same folder; the file is
        renamed into place only when ``writer`` returns, so an interrupted or
        failing writer leaves neither a half-written file nor a stray
        temporary one.

        Parameters
        ----------
        name
            File name relative to ``out_dir`` (``tables/coverage.csv``).
        writer
            Writes the whole file to the path it is given.

        Returns
        -------
        Path or None
            The final path, or ``None`` when the run has no output folder.
        """
        if self.out_dir is None:
            return None
        target = (self.out_dir / name).resolve()
        if self.out_dir.resolve() not in target.parents:
            raise OutputError(f"Output name {name!r} points outside the output folder "
                              f"{self.out_dir}; use a relative name such as 'tables/x.csv'.")
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=target.suffix, dir=target.parent)
        os.close(fd)
        tmp_path = Path(tmp)
        tmp_path.unlink()  # writers such as GDAL refuse to open an existing empty file
        try:
            writer(tmp_path)
            if not tmp_path.exists():
                raise OutputError(f"Writing {name} produced no file (writer wrote nothing).")
            os.replace(tmp_path, target)
        finally:
            for leftover in tmp_path.parent.glob(tmp_path.name + "*"):
                leftover.unlink()  # the temporary file and e.g. GDAL's -journal/-wal
        if target not in self.files:
            self.files.append(target)
        return target

    def __repr__(self) -> str:
        steps = ", ".join(f"{s.name}:{s.status}" for s in self.steps)
        return (
            f"<RunResult {self.scenario.name!r}: {len(self.layers)} layers, "
            f"{len(self.tables)} tables; steps {steps}>"
        )

    def _repr_html_(self) -> str:
        from html import escape

        from planner.pipeline.texts import step_text

        zh = self.lang == "zh"
        colour = {"done": "#1a7f37", "skipped": "#9a6700", "failed": "#cf222e"}
        rows = ""
        for s in self.steps:
            name, status, reason = step_text(s.name, s.status, s.reason, self.lang)
            rows += (f"<tr><td>{escape(name)}</td>"
                     f"<td style='color:{colour.get(s.status, '#000')}'>{escape(status)}</td>"
                     f"<td style='text-align:right'>{s.seconds:.2f}</td>"
                     f"<td>{escape(reason)}</td></tr>")
        lay_rows = ""
        for k, v in self.layers.items():
            try:
                geom = ", ".join(sorted(set(v.geom_type.dropna()))) if len(v) else "-"
                crs = v.crs.to_string() if getattr(v, "crs", None) is not None else "-"
            except AttributeError:
                geom, crs = "-", "-"
            lay_rows += (f"<tr><td><code>{escape(k)}</code></td><td style='text-align:right'>"
                         f"{len(v)}</td><td>{escape(geom)}</td><td>{escape(crs)}</td></tr>")
        tab_rows = "".join(
            f"<tr><td><code>{escape(k)}</code></td><td style='text-align:right'>{len(v)}</td>"
            f"<td>{escape(', '.join(map(str, list(getattr(v, 'columns', []))[:8])))}"
            f"{' …' if len(getattr(v, 'columns', [])) > 8 else ''}</td></tr>"
            for k, v in self.tables.items()
        )
        warns = "".join(f"<li>{escape(w)}</li>" for w in self.warnings[:20])
        more = (f"<li>… {len(self.warnings) - 20} more</li>" if len(self.warnings) > 20 else "")
        t = (("步骤", "状态", "秒", "说明", "图层", "行数", "几何", "坐标系", "表", "列", "提示",
              "输出文件夹") if zh else
             ("step", "status", "s", "note", "Layers", "rows", "geometry", "CRS", "Tables",
              "columns", "Warnings", "Output folder"))
        return (
            f"<div class='planner-run'><h4>planner: {escape(self.scenario.name)}</h4>"
            f"<table><tr><th>{t[0]}</th><th>{t[1]}</th><th>{t[2]}</th><th>{t[3]}</th></tr>"
            f"{rows}</table>"
            + (f"<p><b>{t[4]}</b> (<code>result.layers</code>)</p><table><tr><th></th>"
               f"<th>{t[5]}</th><th>{t[6]}</th><th>{t[7]}</th></tr>{lay_rows}</table>"
               if lay_rows else "")
            + (f"<p><b>{t[8]}</b> (<code>result.tables</code>)</p><table><tr><th></th>"
               f"<th>{t[5]}</th><th>{t[9]}</th></tr>{tab_rows}</table>" if tab_rows else "")
            + (f"<p><b>{t[10]}</b> ({len(self.warnings)})</p><ul>{warns}{more}</ul>"
               if warns else "")
            + (f"<p>{t[11]}: <code>{escape(str(self.out_dir))}</code></p>"
               if self.out_dir else "")
            + "</div>"
        )


