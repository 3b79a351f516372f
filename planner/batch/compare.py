"""The comparison of a sweep: one row per scenario, and one page that links every report."""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from planner.batch.merge import write_csv

__all__ = ["comparison_table", "write_comparison"]


def comparison_table(results: list[Any]) -> pd.DataFrame:
    """Per scenario: swept values, parts, residents 60+, coverage, norm failures, sites.

    Coverage shares are the whole area's (the overall rows of the merged
    ``coverage`` table, nearest facility of any tier).
    """
    keys = list(dict.fromkeys(k for r in results for k in r.values))
    rows = []
    for r in results:
        row: dict[str, Any] = {"variant": r.label, "scenario": r.scenario.name}
        row.update({k: r.values.get(k) for k in keys})
        row["parts"] = len(r.parts)
        row["failed_parts"] = sum(o.status == "failed" for o in r.parts)
        cov = r.tables.get("coverage")
        if cov is not None and len(cov) and "scope" in cov:
            over = cov[(cov["scope"] == "overall") & (cov["tier"] == "any")]
            if "pop_60plus" in over and len(over):
                row["pop_60plus"] = float(over["pop_60plus"].iloc[0])
            for _, o in over.iterrows():
                if "pop_60plus_share" in over:
                    row[f"pop_60plus_within_{float(o['minutes']):g}min_share"] = \
                        float(o["pop_60plus_share"])
        norms = r.tables.get("norm_checks")
        row["norm_failures"] = (int((norms["status"] == "fail").sum())
                                if norms is not None and "status" in norms else np.nan)
        sites = r.tables.get("proposed_sites")
        row["proposed_sites"] = 0 if sites is None else len(sites)
        rows.append(row)
    return pd.DataFrame(rows)


def write_comparison(root: Path, results: list[Any], *, by: str | None) -> pd.DataFrame:
    """Write ``comparison.csv`` and ``comparison.html`` (the table, links to each report)."""
    table = comparison_table(results)
    write_csv(table, root / "comparison.csv")
    links = []
    for r in results:
        rel = r.out_dir.relative_to(root)
        items = [f'<a href="{escape(str(rel / n))}">{escape(n)}</a>'
                 for n in ("report.html", "map.html", "summary.csv")
                 if (r.out_dir / n).is_file()]
        links.append(f"<li><b>{escape(r.label)}</b>: {' · '.join(items) or '(no files)'}</li>")
    lang = results[0].scenario.lang if results else "en"
    title = "情景比较" if lang == "zh" else "Scenario comparison"
    split = {"districts": "按区县", "townships": "按街道/乡镇"}.get(by or "", "整体") \
        if lang == "zh" else f"by {by}" if by else "whole area"
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title>"
            "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
            "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}</style></head><body>"
            f"<h1>{title}</h1><p>{escape(split)}; {len(results)} scenarios.</p>"
            + table.to_html(index=False, float_format=lambda v: f"{v:.4g}", na_rep="",
                            escape=True)
            + f"<ul>{''.join(links)}</ul></body></html>")
    tmp = root / ".tmp-comparison.html"
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(root / "comparison.html")
    return table
