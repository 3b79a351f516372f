"""Scenario files: validation messages, paths, output-folder rules, run.json, steps."""

from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
from shapely.geometry import Point, box

import planner
from planner import pipeline as S
from planner._errors import OutputError, PlannerWarning, ScenarioError
from planner.pipeline import outputs as O
from planner.pipeline import steps as ST


# --------------------------------------------------------------------------- helpers
@pytest.fixture()
def study(tmp_path: Path) -> Path:
    """A tiny study folder: data/ with two layers and a census CSV, scenarios/ beside it."""
    data = tmp_path / "data"
    data.mkdir()
    pop = gpd.GeoDataFrame(
        {"id": ["a", "b"], "name": ["甲社区", "乙社区"], "population": [3000, 4000],
         "pop_60plus": [600, 900]},
        geometry=[box(112.45, 34.62, 112.46, 34.63), box(112.46, 34.62, 112.47, 34.63)],
        crs="EPSG:4326",
    )
    pop.to_file(data / "communities.geojson", driver="GeoJSON")
    pd.DataFrame({"名称": ["站"], "类型": ["社区养老服务站"], "经度": [112.455],
                  "纬度": [34.625]}).to_csv(data / "facilities.csv", index=False)
    (tmp_path / "scenarios").mkdir()
    return tmp_path


def scenario_file(study: Path, text: str) -> Path:
    """Write ``text`` as the study's scenario file ``scenarios/s.yaml``."""
    path = study / "scenarios" / "s.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def load(study: Path, text: str):
    """Write ``text`` as the study's scenario file and load it."""
    return planner.load_scenario(scenario_file(study, text))


GOOD = """\
name: 测试区
lang: en
layers:
  population:
    path: ../data/communities.geojson
  facilities: {path: ../data/facilities.csv, coord_system: gcj02}
network:
  speed_mps: 1.0
"""


def fake_steps(monkeypatch, **funcs) -> None:
    """Replace the run's steps by the functions given (None = a step that is not built)."""
    steps = []
    for name, fn in funcs.items():
        steps.append((name, fn if fn is not None else (lambda r: "not built yet")))
    monkeypatch.setattr(ST, "STEPS", steps)


# --------------------------------------------------------------------------- loading
def test_good_scenario_loads_with_paths_relative_to_its_file(study):
    sc = load(study, GOOD)
    assert sc.name == "测试区" and sc.lang == "en"
    assert sc.resolve(sc.layers.population.path) == (study / "data" / "communities.geojson")
    assert sc.layers.facilities.coord_system == "gcj02"
    assert sc.network.speed_mps == 1.0


def test_paths_do_not_depend_on_the_working_directory(study, monkeypatch, tmp_path_factory):
    monkeypatch.chdir(tmp_path_factory.mktemp("elsewhere"))
    sc = load(study, GOOD)
    assert sc.resolve(sc.layers.facilities.path) == study / "data" / "facilities.csv"


def test_layer_path_shorthand(study):
    text = GOOD.replace("  population:\n    path: ../data/communities.geojson",
                        "  population: ../data/communities.geojson")
    sc = load(study, text)
    assert sc.layers.population.path == Path("../data/communities.geojson")


def test_misspelt_key_names_key_line_and_suggestion(study):
    text = GOOD.replace("lang: en", "langauge: en")
    with pytest.raises(ScenarioError, match=r"line 2: `langauge`: unknown key; did you mean "
                                            r"`lang`\?"):
        load(study, text)


def test_misspelt_nested_key(study):
    text = GOOD.replace("speed_mps: 1.0", "speed_mp: 1.0")
    with pytest.raises(ScenarioError) as info:
        load(study, text)
    msg = str(info.value)
    assert "line 8: `network.speed_mp`: unknown key; did you mean `speed_mps`?" in msg
    assert "allowed keys here:" in msg and "max_snap_m" in msg


def test_wrong_type_names_key_line_and_value(study):
    text = GOOD.replace("speed_mps: 1.0", "speed_mps: fast")
    with pytest.raises(ScenarioError, match=r"line 8: `network.speed_mps`: .*valid number.*"
                                            r"\(got 'fast'\)"):
        load(study, text)


def test_union_type_is_one_problem_without_pydantic_tags(study):
    text = GOOD + "locate:\n  township_centre:\n    p: many\n"
    with pytest.raises(ScenarioError) as info:
        load(study, text)
    msg = str(info.value)
    assert "(1 problem(s))" in msg
    assert "line 11: `locate.township_centre.p`:" in msg and "'auto'" in msg
    assert ".p.int" not in msg and "literal[" not in msg


def test_out_of_range_value(study):
    text = GOOD.replace("speed_mps: 1.0", "speed_mps: 30")
    with pytest.raises(ScenarioError, match=r"`network.speed_mps`: Input should be less than 3"):
        load(study, text)


def test_missing_file_is_named_with_its_line(study):
    text = GOOD.replace("../data/facilities.csv", "../data/facilites.csv")
    with pytest.raises(ScenarioError) as info:
        load(study, text)
    msg = str(info.value)
    assert "line 6: `layers.facilities.path`: file " in msg
    assert str(study / "data" / "facilites.csv") in msg
    assert "did you mean `facilities.csv`?" in msg


def test_every_problem_reported_at_once(study):
    text = (GOOD.replace("lang: en", "lang: fr").replace("speed_mps: 1.0", "speed_mps: x")
            .replace("../data/facilities.csv", "../data/nope.csv") + "outptus: {}\n")
    with pytest.raises(ScenarioError) as info:
        load(study, text)
    msg = str(info.value)
    assert "(4 problem(s))" in msg
    lines = [ln for ln in msg.splitlines() if ln.startswith("  - ")]
    assert [ln.split(":")[0] for ln in lines] == ["  - line 2", "  - line 6", "  - line 8",
                                                  "  - line 9"]  # sorted by line
    assert "did you mean `outputs`?" in msg


def test_missing_required_key(study):
    text = GOOD.replace("name: 测试区\n", "")
    with pytest.raises(ScenarioError, match=r"`name`: required key is missing"):
        load(study, text)


def test_invalid_yaml_gives_line(study):
    text = GOOD.replace("lang: en", "lang: [en")
    with pytest.raises(ScenarioError, match=r"not valid YAML at line \d+"):
        load(study, text)


def test_not_a_mapping_and_missing_scenario(study):
    with pytest.raises(ScenarioError, match="must be a YAML mapping"):
        load(study, "- a\n- b\n")
    with pytest.raises(ScenarioError, match="does not exist"):
        planner.load_scenario(study / "scenarios" / "absent.yaml")
    with pytest.raises(ValueError):  # ScenarioError is a ValueError
        planner.load_scenario(study / "scenarios" / "absent.yaml")


def test_duplicate_key_is_reported(study):
    text = GOOD + "lang: zh\n"
    with pytest.raises(ScenarioError, match=r"line 9: `lang`: written twice \(first at line 2\)"):
        load(study, text)


def test_empty_scenario(study):
    with pytest.raises(ScenarioError, match="is empty"):
        load(study, "# nothing\n")


def test_base_dir_cannot_be_set_in_the_file(study):
    with pytest.raises(ScenarioError, match="`base_dir`: unknown key"):
        load(study, GOOD + "base_dir: /\n")


def test_packaged_demo_scenario_loads():
    sc = planner.load_scenario(S.demo_scenario_path())
    assert sc.name.startswith("示范区")
    assert sc.resolve(sc.network.path).is_file()
    assert sc.demand.area_layer == "townships"


# --------------------------------------------------------------------------- output folder
def test_refuses_non_empty_output_folder(study):
    sc = load(study, GOOD)
    out = study / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(OutputError, match="is not empty. Pass --overwrite"):
        O.prepare_out_dir(sc, out)
    assert O.prepare_out_dir(sc, out, overwrite=True) == out.resolve()
    assert (out / "notes.txt").read_text() == "mine"  # a user's file is never deleted


def test_never_writes_into_an_input_folder(study):
    sc = load(study, GOOD)
    for folder in (study / "data", study):  # the input folder, or one that contains it
        with pytest.raises(OutputError, match="holds input files"):
            O.prepare_out_dir(sc, folder, overwrite=True)
    with pytest.raises(OutputError, match="not a folder"):
        O.prepare_out_dir(sc, study / "scenarios" / "s.yaml", overwrite=True)


def test_input_folder_message_lists_each_file_once():
    demo = planner.load_scenario(S.demo_scenario_path())  # nine layers from one demo.gpkg
    with pytest.raises(OutputError, match="holds input files") as err:
        O.prepare_out_dir(demo, S.demo_scenario_path().parent, overwrite=True)
    assert str(err.value).count("demo.gpkg") == 1


def test_output_from_scenario_is_relative_to_it(study):
    sc = load(study, GOOD + "output: ../out\n")
    assert O.prepare_out_dir(sc, None) == (study / "out").resolve()
    assert (study / "out").is_dir()


def test_overwrite_removes_the_previous_run_files_only(study, monkeypatch):
    def writes_a_table(result):
        result.tables["t"] = pd.DataFrame({"x": [1]})

    fake_steps(monkeypatch, a=writes_a_table, outputs=ST.outputs)
    path = scenario_file(study, GOOD)
    out = study / "out"
    planner.run(path, out_dir=out)
    assert (out / "tables" / "t.csv").is_file()
    (out / "mine.txt").write_text("keep")

    def writes_other(result):
        result.tables["u"] = pd.DataFrame({"x": [2]})

    fake_steps(monkeypatch, a=writes_other, outputs=ST.outputs)
    planner.run(path, out_dir=out, overwrite=True)
    assert not (out / "tables" / "t.csv").exists()  # stale output of the last run
    assert (out / "tables" / "u.csv").is_file() and (out / "mine.txt").read_text() == "keep"


def test_atomic_write_leaves_no_partial_file(study):
    sc = load(study, GOOD)
    result = S.RunResult(scenario=sc, out_dir=O.prepare_out_dir(sc, study / "out"))
    result.write("a.txt", lambda p: p.write_text("old"))

    def broken(p: Path) -> None:
        p.write_text("half a fi")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        result.write("a.txt", broken)
    with pytest.raises(RuntimeError):
        result.write("b.txt", broken)
    assert (study / "out" / "a.txt").read_text() == "old"
    assert sorted(p.name for p in (study / "out").iterdir()) == ["a.txt"]
    with pytest.raises(OutputError, match="outside the output folder"):
        result.write("../escape.txt", lambda p: p.write_text("x"))


# --------------------------------------------------------------------------- run
def test_run_json_hashes_match_hashlib(study, monkeypatch):
    fake_steps(monkeypatch, a=lambda r: None, outputs=ST.outputs)
    path = scenario_file(study, GOOD)
    result = planner.run(path, out_dir=study / "out")
    info = json.loads((study / "out" / "run.json").read_text(encoding="utf-8"))
    assert info["status"] == "done" and info["scenario"] == "测试区"
    for key, f in [("scenario", path),
                   ("layers.population.path", study / "data" / "communities.geojson"),
                   ("layers.facilities.path", study / "data" / "facilities.csv")]:
        assert info["inputs"][key]["sha256"] == hashlib.sha256(f.read_bytes()).hexdigest()
        assert info["inputs"][key]["path"] == str(f)
    assert info["settings"]["network"]["speed_mps"] == 1.0
    assert [s["name"] for s in info["steps"]] == ["a", "outputs"]
    assert all(isinstance(s["seconds"], float) for s in info["steps"])
    assert "pandas" in info["versions"] and "python" in info["versions"]
    assert "run.json" in info["files"]
    assert result.inputs == info["inputs"]


def test_step_not_built_is_reported_skipped(study, monkeypatch):
    fake_steps(monkeypatch, a=lambda r: None, b=None, c=lambda r: "no `c:` section")
    result = planner.run(scenario_file(study, GOOD))
    got = {s.name: (s.status, s.reason) for s in result.steps}
    assert got == {"a": ("done", ""), "b": ("skipped", "not built yet"),
                   "c": ("skipped", "no `c:` section")}
    assert list(result.summary()["status"]) == ["done", "skipped", "skipped"]


def test_real_steps_are_functions_in_run_order():
    # the chain is plain function references: a renamed function fails at import, not at run
    assert [name for name, _ in ST.STEPS] == ["layers", "demand", "network", "checks", "access",
                                             "norms", "locate", "outputs", "maps", "report"]
    for name, fn in ST.STEPS:
        assert callable(fn) and fn.__name__ == name, name


def test_only_requested_steps_run(study, monkeypatch):
    calls = []
    fake_steps(monkeypatch, a=lambda r: calls.append("a"), b=lambda r: calls.append("b"))
    result = S.run(scenario_file(study, GOOD), steps=["b"])
    assert calls == ["b"]
    assert result.step("a").reason == "not requested"
    with pytest.raises(ScenarioError, match="Unknown step"):
        S.run(scenario_file(study, GOOD), steps=["nope"])


def test_failed_step_still_writes_run_json(study, monkeypatch):
    def boom(result):
        raise RuntimeError("solver exploded")

    fake_steps(monkeypatch, a=lambda r: None, b=boom, c=lambda r: None)
    with pytest.raises(RuntimeError, match="solver exploded"):
        planner.run(scenario_file(study, GOOD), out_dir=study / "out")
    info = json.loads((study / "out" / "run.json").read_text(encoding="utf-8"))
    assert info["status"] == "failed" and "solver exploded" in info["error"]
    assert [(s["name"], s["status"]) for s in info["steps"]] == [("a", "done"), ("b", "failed")]


def test_step_warnings_are_collected_and_shown(study, monkeypatch):
    def repairs(result):
        warnings.warn("joined 3 near-miss ends", PlannerWarning, stacklevel=2)
        result.warn("dropped 1 minor component", "删除了 1 个较小的连通部分")

    fake_steps(monkeypatch, a=repairs)
    with pytest.warns(PlannerWarning) as record:
        result = planner.run(scenario_file(study, GOOD))
    assert result.warnings == ["joined 3 near-miss ends", "dropped 1 minor component"]
    assert sorted(str(w.message) for w in record) == ["dropped 1 minor component",
                                                      "joined 3 near-miss ends"]


def test_outputs_step_writes_layers_and_tables(study):
    sc = load(study, GOOD)
    result = S.RunResult(scenario=sc, out_dir=O.prepare_out_dir(sc, study / "out"))
    gdf = gpd.GeoDataFrame({"id": [1, 2], "tags": [["a"], ["b", "c"]]},
                           geometry=[Point(0, 0), Point(10, 5)], crs="EPSG:32649")
    result.layers["sites"] = gdf
    result.tables["coverage"] = pd.DataFrame({"街道": ["东城街道"], "share": [0.5]})
    assert ST.outputs(result) is None
    back = gpd.read_file(study / "out" / "layers.gpkg", layer="sites")
    assert back.crs.to_epsg() == 32649
    assert list(back.geometry.x) == [0.0, 10.0]
    assert json.loads(back["tags"][1]) == ["b", "c"]
    raw = (study / "out" / "tables" / "coverage.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # BOM: Excel opens Chinese text correctly
    assert pd.read_csv(study / "out" / "tables" / "coverage.csv")["街道"][0] == "东城街道"


def test_outputs_step_skips_without_folder(study):
    sc = load(study, GOOD)
    assert "no output folder" in ST.outputs(S.RunResult(scenario=sc))


def test_repr_html_shows_steps_layers_tables(study, monkeypatch):
    def adds(result):
        result.layers["population"] = gpd.GeoDataFrame(
            {"id": [1]}, geometry=[Point(0, 0)], crs="EPSG:32649")
        result.tables["coverage"] = pd.DataFrame({"a": [1, 2]})

    fake_steps(monkeypatch, layers=adds, report=None)
    result = planner.run(scenario_file(study, GOOD))
    html = result._repr_html_()
    # step names, statuses in the run's language (reasons unknown to the table kept as given)
    assert "<td>Layers</td><td style='color:#1a7f37'>done</td>" in html
    assert "not built yet" in html
    assert "<code>population</code></td><td style='text-align:right'>1</td><td>Point</td>" \
        "<td>EPSG:32649</td>" in html
    assert "<code>coverage</code></td><td style='text-align:right'>2</td>" in html
    assert "测试区" in html and "RunResult '测试区'" in repr(result)


def test_old_scenario_module_forwards_to_the_pipeline_with_a_deprecation_warning():
    import planner.scenario as old

    with pytest.warns(DeprecationWarning, match="planner.pipeline.run"):
        assert old.run is planner.pipeline.run
    with pytest.raises(AttributeError):
        old.nope  # noqa: B018
