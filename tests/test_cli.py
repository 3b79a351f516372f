"""The ``planner`` command: exit codes, one-line errors, the demo end to end."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

import planner
from planner.cli import EXIT_BAD_INPUT, EXIT_FAILED, cli
from planner.pipeline import demo_scenario_path
from planner.pipeline import steps as S

SCENARIO = """\
name: 测试区
layers:
  population: ../data/communities.csv
network:
  speed_mps: 1.0
"""


@pytest.fixture()
def study(tmp_path: Path) -> Path:
    (tmp_path / "data").mkdir()
    pd.DataFrame({"名称": ["甲社区"], "人口": [3000], "经度": [112.45], "纬度": [34.62]}).to_csv(
        tmp_path / "data" / "communities.csv", index=False)
    (tmp_path / "scenarios").mkdir()
    path = tmp_path / "scenarios" / "s.yaml"
    path.write_text(SCENARIO, encoding="utf-8")
    return tmp_path


def fake_steps(monkeypatch, **funcs) -> None:
    monkeypatch.setattr(S, "STEPS", list(funcs.items()))


def invoke(*args: str):
    return CliRunner().invoke(cli, [str(a) for a in args])


def test_version():
    res = invoke("--version")
    assert res.exit_code == 0
    assert res.output.strip() == f"planner, version {planner.__version__}"


def test_help_lists_commands():
    res = invoke("--help")
    assert res.exit_code == 0
    for cmd in ("run", "demo", "validate", "check"):
        assert cmd in res.output


def test_usage_error_exits_2():
    res = invoke("run")  # missing SCENARIO argument
    assert res.exit_code == 2 and "Missing argument" in res.output
    assert invoke("frobnicate").exit_code == 2


def test_bad_scenario_exits_2_with_message_and_no_traceback(study):
    path = study / "scenarios" / "s.yaml"
    path.write_text(SCENARIO.replace("speed_mps", "speed_mp"), encoding="utf-8")
    res = invoke("run", path, "-o", study / "out")
    assert res.exit_code == EXIT_BAD_INPUT
    assert "Error: Scenario" in res.output
    assert "line 5: `network.speed_mp`: unknown key; did you mean `speed_mps`?" in res.output
    assert "Traceback" not in res.output
    assert not (study / "out").exists()  # nothing written for a bad scenario


def test_bad_layer_exits_2_with_one_line_naming_the_layer(study):
    path = study / "scenarios" / "s.yaml"
    (study / "data" / "communities.csv").write_text("名称,人口,经度,纬度\n甲社区,-5,112.45,34.62\n",
                                                     encoding="utf-8")
    res = invoke("run", path, "-o", study / "out")
    assert res.exit_code == EXIT_BAD_INPUT
    assert "Traceback" not in res.output
    errors = [line for line in res.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "Layer `population`" in errors[0]
    assert "-5" in res.output and "row 1" in res.output  # the bad value and its row


def test_missing_scenario_file_exits_2(study):
    res = invoke("run", study / "nope.yaml")
    assert res.exit_code == EXIT_BAD_INPUT
    assert "does not exist" in res.output and "Traceback" not in res.output


def test_non_empty_output_folder_exits_2_unless_overwrite(study, monkeypatch):
    fake_steps(monkeypatch, a=lambda r: None, outputs=S.outputs)
    out = study / "out"
    out.mkdir()
    (out / "x.txt").write_text("x")
    res = invoke("run", study / "scenarios" / "s.yaml", "-o", out)
    assert res.exit_code == EXIT_BAD_INPUT and "--overwrite" in res.output
    res = invoke("run", study / "scenarios" / "s.yaml", "-o", out, "--overwrite")
    assert res.exit_code == 0, res.output
    assert json.loads((out / "run.json").read_text(encoding="utf-8"))["status"] == "done"


def test_output_into_input_folder_exits_2(study, monkeypatch):
    fake_steps(monkeypatch, a=lambda r: None)
    res = invoke("run", study / "scenarios" / "s.yaml", "-o", study / "data")
    assert res.exit_code == EXIT_BAD_INPUT and "holds input files" in res.output


def test_failed_run_exits_1_and_debug_shows_the_exception(study, monkeypatch):
    def boom(result):
        raise ZeroDivisionError("division by zero in step b")

    fake_steps(monkeypatch, a=lambda r: None, b=boom)
    res = invoke("run", study / "scenarios" / "s.yaml")
    assert res.exit_code == EXIT_FAILED
    assert "Error: the run failed: ZeroDivisionError: division by zero in step b" in res.output
    assert "Traceback" not in res.output
    res = invoke("--debug", "run", study / "scenarios" / "s.yaml")
    assert isinstance(res.exception, ZeroDivisionError)


def test_run_prints_progress_and_steps(study, monkeypatch):
    fake_steps(monkeypatch, a=lambda r: None, b=lambda r: "no `b:` section")
    res = invoke("run", study / "scenarios" / "s.yaml")
    assert res.exit_code == 0
    assert re.search(r"  ✓ a +完成 +\d+\.\d\d 秒", res.output)  # a line as each step ends
    assert re.search(r"  – b +跳过 +\d+\.\d\d 秒  \(no `b:` section\)", res.output)
    assert "nothing written" in res.output


CHAIN = {name: (lambda r: None) for name in ("layers", "demand", "network", "checks", "access")}


def test_check_without_norms_exits_2(study, monkeypatch):
    fake_steps(monkeypatch, **CHAIN, norms=lambda r: "no `norms:` section")
    res = invoke("check", study / "scenarios" / "s.yaml")
    assert res.exit_code == EXIT_BAD_INPUT
    assert "no norm checks: no `norms:` section" in res.output


def test_check_prints_failures(study, monkeypatch):
    def norms(result):
        result.tables["norm_checks"] = pd.DataFrame({
            "rule_id": ["centre_per_township", "centre_per_township"],
            "unit_name": ["东城街道", "南山街道"], "value": [1, 0], "threshold": [1, 1],
            "unit": ["个", "个"], "status": ["pass", "fail"],
            "shortfall_text": ["", "缺少1个街镇综合养老服务中心"]})

    fake_steps(monkeypatch, **CHAIN, norms=norms)
    res = invoke("check", study / "scenarios" / "s.yaml")
    assert res.exit_code == 0, res.output
    assert "pass: 1" in res.output and "fail: 1" in res.output
    assert "南山街道" in res.output and "东城街道" not in res.output
    res = invoke("check", study / "scenarios" / "s.yaml", "--all")
    assert "东城街道" in res.output


# --------------------------------------------------------------------------- the real demo
@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "demo-out"
    res = CliRunner().invoke(cli, ["demo", "-o", str(out)])
    return res, out


def test_demo_runs_end_to_end(demo_run):
    res, out = demo_run
    assert res.exit_code == 0, res.output
    info = json.loads((out / "run.json").read_text(encoding="utf-8"))
    assert info["status"] == "done"
    assert info["scenario"].startswith("示范区")
    assert {s["name"] for s in info["steps"]} == {name for name, _ in S.STEPS}
    assert all(s["status"] in ("done", "skipped") for s in info["steps"])
    assert info["inputs"]["layers.population.path"]["path"].endswith("demo.gpkg")
    assert (out / "layers.gpkg").is_file()
    assert "Outputs written to" in res.output


def test_demo_refuses_to_run_twice_into_the_same_folder(demo_run):
    res, out = demo_run
    again = CliRunner().invoke(cli, ["demo", "-o", str(out)])
    assert again.exit_code == EXIT_BAD_INPUT and "not empty" in again.output


def test_validate_demo_prints_layer_table():
    res = invoke("validate", demo_scenario_path(), "--no-network")
    assert res.exit_code == 0, res.output
    rows = {ln.split()[0]: ln.split() for ln in res.output.splitlines()[2:] if ln.strip()}
    assert rows["population"][1] == "46" and rows["population"][2] == "Polygon"
    assert rows["population"][3].startswith("EPSG:326")  # a metric UTM CRS
    assert rows["townships"][1] == "3"
    assert rows["facilities"][1] == "21" and rows["facilities"][2] == "Point"
    assert "No problems found." in res.output


def test_validate_demo_builds_the_network_with_its_traps_handled():
    """The demo's 4 near-misses are joined and its 3-lane cluster dropped (planner.demo)."""
    res = invoke("validate", demo_scenario_path())
    assert res.exit_code == 0, res.output
    line = next(ln for ln in res.output.splitlines() if ln.startswith("  network: "))
    values = dict(kv.split("=") for kv in line.removeprefix("  network: ").split(", "))
    assert values["near_miss_joins"] == "4"
    assert values["components_dropped"] == "1"
    # 4 bridges over 2 riverside roads each, and one over a compound footway
    assert values["crossings_grade_separated"] == "9"


def test_validate_bad_scenario_exits_2(study):
    path = study / "scenarios" / "s.yaml"
    path.write_text(SCENARIO.replace("communities.csv", "missing.csv"), encoding="utf-8")
    res = invoke("validate", path)
    assert res.exit_code == EXIT_BAD_INPUT
    assert "line 3: `layers.population`: file" in res.output and "Traceback" not in res.output


@pytest.mark.parametrize(("name", "content", "says"), [
    ("demo_facilities.csv", "", "Layer `facilities` ({path}): the file is empty (0 bytes)"),
    ("demo_facilities.csv", "\n\n", "Layer `facilities`: table {path} has no header row"),
    ("demo_census_2020.csv", "", "Table {path} is empty (0 bytes)"),
    ("demo_census_2010.csv", "\r\n", "Table {path} has no header row and no data"),
])
def test_empty_input_file_exits_2_naming_the_file(tmp_path, name, content, says):
    import shutil

    for f in demo_scenario_path().parent.iterdir():
        shutil.copy(f, tmp_path / f.name)
    (tmp_path / name).write_bytes(content.encode())
    for args in (("validate", "--no-network"), ("run", "-o", tmp_path / "out")):
        res = invoke(args[0], tmp_path / "demo.yaml", *args[1:])
        assert res.exit_code == EXIT_BAD_INPUT, res.output
        assert says.format(path=tmp_path / name) in res.output
        assert "EmptyDataError" not in res.output and "Traceback" not in res.output


# ------------------------------------------------------------ output folders that cannot be written
def _steps_that_record(monkeypatch) -> list[str]:
    ran: list[str] = []
    fake_steps(monkeypatch, layers=lambda r: ran.append("layers"),
               outputs=lambda r: ran.append("outputs"))
    return ran


def test_output_folder_under_a_file_fails_before_any_step(study, monkeypatch):
    ran = _steps_that_record(monkeypatch)
    (study / "notes.txt").write_text("mine", encoding="utf-8")
    for out in (study / "notes.txt" / "out", study / "notes.txt" / "a" / "b"):
        res = invoke("run", study / "scenarios" / "s.yaml", "-o", out)
        assert res.exit_code == EXIT_BAD_INPUT, res.output
        assert (f"Output folder {out} cannot be created: {study / 'notes.txt'} is a file, "
                "not a folder.") in res.output
    assert ran == [] and (study / "notes.txt").read_text(encoding="utf-8") == "mine"


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0,
                    reason="root ignores folder permissions (chmod) and POSIX only; the "
                           "read-only file-system test below covers the same path")
def test_read_only_output_folder_fails_before_any_step(study, monkeypatch):
    ran = _steps_that_record(monkeypatch)
    ro = study / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        for out in (ro, ro / "sub"):
            res = invoke("run", study / "scenarios" / "s.yaml", "-o", out)
            assert res.exit_code == EXIT_BAD_INPUT, res.output
            assert f"Output folder {out} cannot be written: permission denied." in res.output
    finally:
        ro.chmod(0o755)
    assert ran == [] and list(ro.iterdir()) == []


@pytest.mark.parametrize(("code", "why"), [
    ("EROFS", "it is on a read-only file system"), ("EACCES", "permission denied"),
    ("ENOSPC", "the disk is full")])
def test_read_only_file_system_fails_before_any_step(study, monkeypatch, code, why):
    import errno
    import tempfile

    from planner.pipeline import outputs

    mounted_ro = [True]
    real_mkstemp = tempfile.mkstemp

    def mkstemp(*args, **kwargs):  # what the kernel answers on a read-only mount
        if mounted_ro[0]:
            no = getattr(errno, code)
            raise OSError(no, os.strerror(no), kwargs.get("dir"))
        return real_mkstemp(*args, **kwargs)

    ran = _steps_that_record(monkeypatch)
    monkeypatch.setattr(outputs.tempfile, "mkstemp", mkstemp)
    out = study / "out"
    out.mkdir()
    (out / "run.json").write_text('{"files": ["old.csv"]}', encoding="utf-8")
    (out / "old.csv").write_text("x", encoding="utf-8")
    res = invoke("run", study / "scenarios" / "s.yaml", "-o", out, "--overwrite")
    assert res.exit_code == EXIT_BAD_INPUT, res.output
    assert f"Output folder {out} cannot be written: {why}. Nothing was run." in res.output
    assert ran == [] and (out / "old.csv").is_file()  # nothing removed either
    mounted_ro[0] = False  # remounted read-write: the same run goes through
    res = invoke("run", study / "scenarios" / "s.yaml", "-o", out, "--overwrite")
    assert res.exit_code == 0, res.output
    assert ran == ["layers", "outputs"] and not (out / "old.csv").exists()
    assert not list(out.glob(".planner-probe-*"))
