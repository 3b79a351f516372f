"""Feedback during long work: step lines, progress bars, the solver's bounds, inline figures,
`planner check`'s summary and exit code, the no-output-folder notice."""

from __future__ import annotations

import math
import re
import unicodedata

import numpy as np
import pandas as pd
from click.testing import CliRunner
from test_access import random_net
from test_cli import CHAIN, fake_steps, study  # noqa: F401 - the fixture is used by name
from test_maps import make_result

from planner import access, plots, progress
from planner.access import snap_points
from planner.cli import EXIT_NORMS_FAILED, cli
from planner.locate import LSCP, MCLP, PMedian, read_orlib
from planner.pipeline import presenting, run
from planner.pipeline import steps as S


# --------------------------------------------------------------------------- step lines
def test_each_step_prints_its_line_when_it_ends(study, monkeypatch, capsys):  # noqa: F811
    import sys

    def b(result):
        print("inside b", file=sys.stderr)
        return "no `norms:` section in the scenario"

    fake_steps(monkeypatch, layers=lambda r: None, norms=b)
    run(study / "scenarios" / "s.yaml", progress=True)
    err = capsys.readouterr().err.splitlines()
    # layers' line comes before b starts (printed as it ends, not at the end of the run)
    assert re.fullmatch(r"  ✓ 读取图层 +完成 +\d+\.\d\d 秒", err[0])
    assert err[1] == "inside b"
    assert re.fullmatch(r"  – 规范核查 +跳过 +\d+\.\d\d 秒  \(方案中没有 `norms:` 部分\)", err[2])


def test_progress_is_silent_in_scripts_and_shown_in_notebooks(study, monkeypatch, capsys):  # noqa: F811
    fake_steps(monkeypatch, layers=lambda r: None)
    r = run(study / "scenarios" / "s.yaml")  # default: not a notebook here, so silent
    out = capsys.readouterr()
    assert out.out == out.err == "" and r.progress is False
    names = []
    run(study / "scenarios" / "s.yaml", progress=names.append)  # the older callable form
    assert names == ["layers"] and capsys.readouterr().err == ""
    monkeypatch.setattr(progress, "in_notebook", lambda: True)
    r = run(study / "scenarios" / "s.yaml")  # in Jupyter: shown by default, on stdout
    assert r.progress is True and "✓ 读取图层" in capsys.readouterr().out
    assert r.bar_label("service_areas") == "步行服务范围"


def test_in_notebook_is_false_outside_a_kernel():
    assert progress.in_notebook() is False


def test_service_areas_bar_counts_every_facility_and_changes_nothing(capsys, monkeypatch):
    from tqdm import tqdm

    closed = []

    class Spy(tqdm):
        def close(self):
            closed.append((self.desc, self.n, self.total))
            super().close()

    monkeypatch.setattr(progress, "_tqdm_class", lambda: Spy)
    net = random_net(7, n=250, keep=0.7)
    fac = snap_points(net, np.random.default_rng(1).uniform(500, 2500, (5, 2)), max_snap_m=1e9)
    quiet = access.service_areas(net, fac, minutes=(5, 10), buffer_m=10, workers=1)
    assert capsys.readouterr().err == "" and closed == []
    shown = access.service_areas(net, fac, minutes=(5, 10), buffer_m=10, workers=1,
                                 progress="步行服务范围")
    assert "步行服务范围" in capsys.readouterr().err
    assert set(closed) == {("步行服务范围", 5, 5)}  # every facility counted, once
    assert all(a.equals(b) for a, b in zip(quiet.geometry, shown.geometry))


# --------------------------------------------------------------------------- the exact solver
def test_solver_reports_valid_bounds_through_every_phase(orlib_dir, monkeypatch):
    # pmed6 (optimum 7824): its LP bound is fractional; a node limit of 1 sends the proof
    # through our branch-and-cut and then HiGHS's MIP, so every phase reports
    import planner.locate._exact as ex

    monkeypatch.setattr(ex, "_NODE_LIMIT", 1)
    cost, p = read_orlib(orlib_dir / "pmed6.txt")
    seen: list[progress.SolveProgress] = []
    r = PMedian.from_cost_matrix(cost, p=p).solve(method="exact", time_limit_s=120,
                                                   progress=seen.append)
    assert r.objective == 7824 and r.status == "optimal"
    phases = [s.phase for s in seen]
    assert phases[0] == "heuristic" and phases[-1] == "done"
    assert {"lp", "branch", "mip"} <= set(phases)
    for s in seen:  # a bound never above the optimum, an incumbent never below it
        assert s.incumbent >= 7824 - 1e-6
        if math.isfinite(s.bound):
            assert s.bound <= 7824 + 1e-6
    incumbents = [s.incumbent for s in seen]
    assert incumbents == sorted(incumbents, reverse=True)  # only ever improves
    assert seen[-1].incumbent == seen[-1].bound == 7824 and seen[-1].gap == 0
    assert all(b.seconds >= a.seconds for a, b in zip(seen, seen[1:]))


def test_solver_progress_changes_no_answer_and_prints_lines(capsys):
    rng = np.random.default_rng(3)
    xy = rng.uniform(0, 1000, (60, 2))
    cost = np.hypot(*(xy[:, None, :] - xy[None, :40, :]).transpose(2, 0, 1))
    w = rng.integers(1, 20, 60).astype(float)
    quiet = PMedian.from_cost_matrix(cost, p=4, weights=w).solve(method="exact")
    loud = PMedian.from_cost_matrix(cost, p=4, weights=w).solve(method="exact", progress=True)
    assert loud.sites.tolist() == quiet.sites.tolist() and loud.objective == quiet.objective
    lines = capsys.readouterr().err.splitlines()
    assert lines[-1].startswith("done: incumbent ") and "gap 0.00%" in lines[-1]
    # MCLP reports covered weight (a maximisation); LSCP the number of sites
    seen = []
    m = MCLP.from_cost_matrix(cost, p=3, coverage=250.0, weights=w)
    res = m.solve(method="exact", progress=seen.append)
    assert seen[-1].incumbent == res.objective and seen[-1].phase == "done"
    assert all(s.incumbent <= res.objective + 1e-9 for s in seen)  # covered never overstated
    seen.clear()
    res = LSCP.from_cost_matrix(cost, coverage=300.0, weights=w).solve(progress=seen.append)
    assert seen[0].phase == "greedy" and seen[0].incumbent >= res.objective
    assert seen[-1].incumbent == res.objective == res.sites.size


# --------------------------------------------------------------------------- figures in Jupyter
def test_print_maps_show_inline_without_matplotlib_inline():
    from IPython.core.formatters import DisplayFormatter

    fig = plots.coverage_map(presenting.study_of(make_result(lang="en")))
    data, _ = DisplayFormatter().format(fig)
    png = data["image/png"]
    png = png if isinstance(png, bytes) else __import__("base64").b64decode(png)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width = int.from_bytes(png[16:20], "big")
    assert 500 < width < 1200  # 100 dpi: a notebook-sized picture, not a 300 dpi print


# --------------------------------------------------------------------------- the command line
def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in text)


def _check_steps(monkeypatch):
    def norms(result):
        result.tables["norm_checks"] = pd.DataFrame({
            "rule_id": ["centre", "centre", "centre", "beds"],
            "title": ["一镇街一中心"] * 3 + ["Beds per 1,000"],
            "scope": ["township"] * 3 + ["district"],
            "unit_name": ["东城街道", "南山街道", "西河街道", "示范区"],
            "value": [1, 0, 0, 45.5], "threshold": [1, 1, 1, 40.0],
            "unit": ["个", "个", "个", "张/千名老年人"],
            "status": ["pass", "fail", "fail", "pass"], "shortfall": [0, 1, 1, 0],
            "shortfall_text": ["", "还需 1 个街镇综合养老服务中心", "还需 1 个街镇综合养老服务中心",
                               ""]})

    fake_steps(monkeypatch, **CHAIN, norms=norms)


def test_check_prints_an_aligned_summary_per_rule_and_fail_exit(study, monkeypatch):  # noqa: F811
    _check_steps(monkeypatch)
    res = CliRunner().invoke(cli, ["check", str(study / "scenarios" / "s.yaml")])
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    i = lines.index("规范核查汇总（按规则）:")
    head, centre, beds = lines[i + 1], lines[i + 2], lines[i + 3]
    assert "一镇街一中心" in centre and "还需 2 个街镇综合养老服务中心" in centre  # 1 + 1
    # columns line up on screen: each count ends at the same display column
    col = head.index("未达标单元数") + len("未达标单元数")
    end = _width(head[:col])
    assert _width(centre[:centre.index(" 2 ") + 2]) == end  # 2 units failing
    assert _width(beds[:beds.index(" 0 ") + 2]) == end
    assert re.search(r"南山街道 .* 未达标", res.output) and "东城街道" not in res.output
    res = CliRunner().invoke(cli, ["check", str(study / "scenarios" / "s.yaml"), "--fail-exit"])
    assert res.exit_code == EXIT_NORMS_FAILED == 3


def test_check_fail_exit_is_zero_when_all_pass(study, monkeypatch):  # noqa: F811
    def norms(result):
        result.tables["norm_checks"] = pd.DataFrame({
            "rule_id": ["a"], "title": ["x"], "unit_name": ["u"], "value": [1.0],
            "threshold": [1.0], "unit": ["个"], "status": ["pass"]})

    fake_steps(monkeypatch, **CHAIN, norms=norms)
    res = CliRunner().invoke(cli, ["check", str(study / "scenarios" / "s.yaml"), "--fail-exit"])
    assert res.exit_code == 0 and "全部达标。" in res.output


def test_run_without_output_folder_says_so_before_running(study, monkeypatch):  # noqa: F811
    import sys

    told = []

    def layers(result):  # what the user has read when the first step starts
        sys.stderr.flush()
        told.append(sys.stderr.buffer.getvalue().decode("utf-8"))

    fake_steps(monkeypatch, layers=layers)
    res = CliRunner().invoke(cli, ["run", str(study / "scenarios" / "s.yaml")])
    assert res.exit_code == 0, res.output
    assert "未指定输出文件夹" in told[0] and "照常计算，但不写出任何文件" in told[0]
    assert "nothing written." in res.output


def test_steps_list_is_the_real_pipeline():
    # the names step_line translates are the pipeline's steps
    from planner.pipeline.texts import STEP_NAMES

    assert [n for n, _ in S.STEPS] == list(STEP_NAMES["zh"]) == list(STEP_NAMES["en"])
