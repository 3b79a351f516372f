"""Bad or unusual inputs (issue 13, items 8-18): a clear message or a warning, never a
silently wrong answer.  Each test builds its input from the demo data or generates it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from planner._errors import NormsError, ScenarioError
from planner.norms import load_rules
from planner.pipeline import load_scenario

ROOT = Path(__file__).resolve().parents[1]


def billion_laughs(top_key: str = "name") -> str:
    """A YAML document under 600 bytes whose nested aliases expand to 9**9 strings."""
    doc = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    prev = "a"
    for key in "bcdefghi":
        doc += f"{key}: &{key} [" + ",".join([f"*{prev}"] * 9) + "]\n"
        prev = key
    return doc + f"{top_key}: *i\n"


# --------------------------------------------------------------------------- 16: YAML aliases
def test_billion_laughs_scenario_is_refused_before_anything_expands(tmp_path):
    path = tmp_path / "laughs.yaml"
    path.write_text(billion_laughs(), encoding="utf-8")
    assert path.stat().st_size < 600
    # in a child process limited to 1 GiB of address space: expanding the aliases (as the
    # scenario loader's key-line walk did) dies of MemoryError there instead of the machine
    code = (
        "import resource, sys\n"
        "resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))\n"
        "from planner.pipeline import load_scenario\n"
        "from planner._errors import ScenarioError\n"
        "try:\n"
        f"    load_scenario({str(path)!r})\n"
        "except ScenarioError as exc:\n"
        "    print(exc)\n"
        "    sys.exit(3)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 3, proc.stderr[-2000:]
    assert "uses a YAML alias (`*a` at line 2)" in proc.stdout
    assert "not allowed in a scenario" in proc.stdout


def test_scenario_alias_is_refused_with_its_line(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("name: x\nlayers:\n  population: &p a.csv\n  facilities: *p\n",
                    encoding="utf-8")
    with pytest.raises(ScenarioError, match=r"uses a YAML alias \(`\*p` at line 4\)"):
        load_scenario(path)


def test_rule_file_alias_is_refused(tmp_path):
    path = tmp_path / "rules.yaml"
    path.write_text("jurisdiction: {zh: 甲, en: A}\n" + billion_laughs("rules"), encoding="utf-8")
    with pytest.raises(NormsError, match=r"rules\.yaml uses a YAML alias \(`\*a` at line 3\).*"
                                         r"not allowed in a rule file"):
        load_rules(path)


# --------------------------------------------------------------------------- demo scenarios
DEMO_DIR = ROOT / "planner" / "data"


def demo_scenario(tmp_path: Path, edit=None, name: str = "demo.yaml") -> Path:
    """The demo scenario written to ``tmp_path`` with absolute paths, after ``edit(dict)``."""
    import yaml

    data = yaml.safe_load((DEMO_DIR / "demo.yaml").read_text(encoding="utf-8"))
    for lay in data["layers"].values():
        lay["path"] = str(DEMO_DIR / lay["path"])
    data["network"]["path"] = str(DEMO_DIR / data["network"]["path"])
    for key in ("census", "census_previous"):
        data["demand"][key] = str(DEMO_DIR / data["demand"][key])
    if edit is not None:
        edit(data)
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def invoke(*args):
    from click.testing import CliRunner

    from planner.cli import cli

    return CliRunner().invoke(cli, [str(a) for a in args])


# --------------------------------------------------------------------------- 8: plan year
def test_rules_none_in_force_in_the_plan_year_is_an_error_naming_the_earliest_year():
    first = min(r.applies_from for r in load_rules("xian_2021"))
    with pytest.raises(NormsError, match=rf"No rule of rule set xian_2021 .* applies in plan year "
                                         rf"2017: every rule applies from {first} or later"):
        load_rules("xian_2021", plan_year=2017)
    assert len(load_rules("xian_2021", plan_year=first)) > 0


def test_check_with_a_plan_year_before_every_rule_exits_2_naming_year_and_line(tmp_path):
    path = demo_scenario(tmp_path, lambda d: d["norms"].update(plan_year=2017))
    line = next(i for i, t in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
                if t.strip().startswith("plan_year:"))
    res = invoke("check", path)
    assert res.exit_code == 2
    assert "All checks pass" not in res.output
    assert f"line {line}: `norms.plan_year`: No rule of rule set xian_2021" in res.output
    assert "applies in plan year 2017" in res.output
    # validate finds it too, before any step
    assert invoke("validate", path, "--no-network").exit_code == 2


def test_check_with_an_empty_rule_file_exits_2(tmp_path):
    (tmp_path / "none.yaml").write_text("jurisdiction: {zh: 空, en: Empty}\nrules: []\n",
                                        encoding="utf-8")
    path = demo_scenario(tmp_path, lambda d: d["norms"].update(rules=str(tmp_path / "none.yaml")),
                         name="s.yaml")
    res = invoke("check", path)
    assert res.exit_code == 2
    assert "All checks pass" not in res.output
    assert f"no norm check was made: the rule set {tmp_path / 'none.yaml'} has no rules" \
        in res.output


# --------------------------------------------------------------------------- 10: cut-off
def _line_of(path: Path, key: str) -> int:
    return next(i for i, t in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
                if t.strip().startswith(f"{key}:"))


def test_cutoff_below_the_largest_threshold_is_rejected_with_its_line(tmp_path):
    path = demo_scenario(tmp_path, lambda d: d["access"].update(cutoff_min=10))
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    msg = str(info.value)
    assert (f"line {_line_of(path, 'cutoff_min')}: `access.cutoff_min`: cutoff_min (10) is "
            "below thresholds_min (15) and circle_min (15)") in msg
    assert "set cutoff_min to at least 15" in msg
    # the default cut-off must reach a threshold given beyond it
    path = demo_scenario(tmp_path, lambda d: d["access"].update(thresholds_min=[5, 15, 90]))
    with pytest.raises(ScenarioError, match=r"cutoff_min \(60\) is below thresholds_min \(90\)"):
        load_scenario(path)
    res = invoke("validate", path, "--no-network")
    assert res.exit_code == 2 and "cutoff_min (60) is below thresholds_min (90)" in res.output
    # equal is fine
    path = demo_scenario(tmp_path, lambda d: d["access"].update(cutoff_min=15))
    assert load_scenario(path).access.cutoff_min == 15


def test_location_model_coverage_beyond_the_cutoff_is_rejected(tmp_path):
    def edit(d):
        d["access"]["cutoff_min"] = 20
        d["locate"]["community_station"]["coverage_min"] = 30
    path = demo_scenario(tmp_path, edit)
    with pytest.raises(ScenarioError, match=rf"line {_line_of(path, 'locate')}: `locate`: "
                                            r"community_station.coverage_min \(30\) is beyond "
                                            r"the routing cut-off access.cutoff_min \(20\)"):
        load_scenario(path)


# --------------------------------------------------------------------------- 17: CSV injection
def test_csv_cells_that_would_run_as_formulas_are_neutralised_numbers_are_not(tmp_path,
                                                                              monkeypatch):
    import geopandas as gpd
    import pandas as pd
    from shapely.geometry import Point

    import planner
    from planner.pipeline import steps as ST

    names = ['=HYPERLINK("http://x","点我")', "+1+2", "-2+3", "@SUM(A1:A2)", "\tTab",
             "-", "西关社区", "-5", "+3.5", "a=b"]
    values = [-1.5, 2.0, -3.0, 0.0, 1.0, 2.0, 3.0, -4.0, 5.0, 6.0]

    def make(result):
        result.tables["t"] = pd.DataFrame({"name": names, "value": values,
                                           "count": [-1, 2, -3, 4, 5, 6, 7, 8, 9, 10]})
        result.layers["pts"] = gpd.GeoDataFrame({"name": names}, crs=32649,
                                                geometry=[Point(i, i) for i in range(10)])

    monkeypatch.setattr(ST, "STEPS", [("make", make), ("outputs", ST.outputs)])
    scen = tmp_path / "s.yaml"
    scen.write_text("name: t\nlayers: {}\n", encoding="utf-8")
    planner.run(scen, out_dir=tmp_path / "out")
    import csv

    with open(tmp_path / "out" / "tables" / "t.csv", encoding="utf-8-sig", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["name"] for r in rows] == [
        '\'=HYPERLINK("http://x","点我")', "'+1+2", "'-2+3", "'@SUM(A1:A2)", "'\tTab", "'-",
        "西关社区", "-5", "+3.5", "a=b"]  # plain numbers written as text are no formulas
    assert [float(r["value"]) for r in rows] == values  # negative numbers stay numbers
    assert [r["count"] for r in rows] == ["-1", "2", "-3", "4", "5", "6", "7", "8", "9", "10"]
    # the GeoPackage holds the values as they are (it is no spreadsheet)
    assert gpd.read_file(tmp_path / "out" / "layers.gpkg", layer="pts")["name"].tolist() == names


def test_csv_safe_quotes_a_leading_carriage_return_and_leaves_other_types():
    import pandas as pd

    from planner.pipeline.outputs import csv_safe

    df = pd.DataFrame({"a": ["\rCR", None, 3, "ok"], "b": [-1.0, -2.0, 3.0, 4.0]})
    out = csv_safe(df)
    assert out["a"].tolist()[0] == "'\rCR" and out["a"].tolist()[2:] == [3, "ok"]
    assert out["a"].isna().tolist()[1] and out["b"].tolist() == [-1.0, -2.0, 3.0, 4.0]
    assert df["a"].tolist()[0] == "\rCR"  # a copy: the run's table is unchanged


# --------------------------------------------------------------------------- 18: interrupts
def _tiny_scenario(tmp_path: Path) -> Path:
    scen = tmp_path / "s.yaml"
    scen.write_text("name: t\nlayers: {}\n", encoding="utf-8")
    return scen


def test_sigint_writes_run_json_with_status_interrupted(tmp_path, monkeypatch):
    import json

    import pandas as pd

    import planner
    from planner.pipeline import steps as ST

    seen = {}

    def first(result):
        result.tables["t"] = pd.DataFrame({"a": [1]})

    def peek(result):  # mid-run, run.json already marks the run as going on
        seen.update(json.loads((result.out_dir / "run.json").read_text(encoding="utf-8")))

    def ctrl_c(result):
        raise KeyboardInterrupt

    monkeypatch.setattr(ST, "STEPS", [("first", first), ("outputs", ST.outputs),
                                      ("peek", peek), ("slow", ctrl_c), ("never", first)])
    with pytest.raises(KeyboardInterrupt):
        planner.run(_tiny_scenario(tmp_path), out_dir=tmp_path / "out")
    info = json.loads((tmp_path / "out" / "run.json").read_text(encoding="utf-8"))
    assert info["status"] == "interrupted"
    assert "interrupted during step 'slow'" in info["error"]
    assert [(s["name"], s["status"]) for s in info["steps"]] == [
        ("first", "done"), ("outputs", "done"), ("peek", "done"), ("slow", "interrupted")]
    assert info["files"] == ["tables/t.csv", "run.json"]  # each once
    assert seen["status"] == "running" and "tables/t.csv" in seen["files"]
    # the command line says so and exits 130 (128 + SIGINT)
    res = invoke("run", _tiny_scenario(tmp_path), "-o", tmp_path / "out2")
    assert res.exit_code == 130
    assert 'records status "interrupted"' in res.output
    info = json.loads((tmp_path / "out2" / "run.json").read_text(encoding="utf-8"))
    assert info["status"] == "interrupted"


def test_next_run_removes_the_temporary_files_a_killed_run_left(tmp_path, monkeypatch):
    import planner
    from planner.pipeline import steps as ST

    out = tmp_path / "out"
    (out / "tables").mkdir(parents=True)
    left = [out / ".tmp-x.gpkg-journal", out / ".tmp-x3k_9a2b.gpkg",
            out / ".tmp-q1w2e3r4.gpkg-wal", out / "tables" / ".tmp-abcdefgh.csv"]
    keep = [out / ".tmp-notes.txt", out / "tmp-x.gpkg", out / "tables" / "mine.csv"]
    for f in left + keep:
        f.write_bytes(b"x")
    monkeypatch.setattr(ST, "STEPS", [("a", lambda r: None)])
    with pytest.raises(planner.OutputError, match="is not empty"):  # the user's files remain
        planner.run(_tiny_scenario(tmp_path), out_dir=out)
    assert not any(f.exists() for f in left)
    assert all(f.exists() for f in keep)
    # a folder holding only a killed run's temporary files counts as empty
    only = tmp_path / "only"
    only.mkdir()
    (only / ".tmp-zzzzzzzz.gpkg-journal").write_bytes(b"x")
    planner.run(_tiny_scenario(tmp_path), out_dir=only)
    assert sorted(p.name for p in only.iterdir()) == ["run.json"]


# --------------------------------------------------------------------------- 14: warnings' language
CJK = __import__("re").compile(r"[\u4e00-\u9fff]")


@pytest.fixture(scope="module")
def demo_zh_run(tmp_path_factory):
    """The whole demo (Chinese) written to a folder: report, workbook, run.json."""
    import warnings

    import planner
    from planner.pipeline import demo_scenario_path

    out = tmp_path_factory.mktemp("demo_zh") / "out"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = planner.run(demo_scenario_path(), out_dir=out)
    return result


def test_a_chinese_run_records_its_warnings_in_chinese_everywhere(demo_zh_run):
    import json

    from openpyxl import load_workbook

    result = demo_zh_run
    assert result.lang == "zh" and result.warnings
    for w in result.warnings:  # Chinese text, not the English one
        assert CJK.search(w.replace("社区", "")), w
        assert "population units" not in w and "result.uncoverable" not in w
    uncov = next(w for w in result.warnings if "uncoverable_units" in w)
    assert uncov.startswith("选址（社区养老服务站，LSCP）：5 个人口单元")
    info = json.loads((result.out_dir / "run.json").read_text(encoding="utf-8"))
    assert info["warnings"] == result.warnings
    html = (result.out_dir / "report.html").read_text(encoding="utf-8")
    assert "无法覆盖" in html and "cannot be covered" not in html
    book = load_workbook(result.out_dir / "planner.xlsx", read_only=True)
    assert "无法覆盖的单元" in book.sheetnames
    assert (result.out_dir / "tables" / "uncoverable_units.csv").is_file()


def test_uncoverable_units_are_exactly_those_no_station_site_reaches_in_15_min(demo_zh_run):
    import numpy as np

    import planner.access as A

    result = demo_zh_run
    table = result.tables["uncoverable_units"]
    assert list(table.columns) == ["id", "name", "township", "pop_60plus", "nearest_candidate_id",
                                   "time_min_nearest_candidate"]
    # an independent check: walking times to every site a station may use (existing stations
    # and centres, candidates for stations or any tier, the centres just proposed), by the
    # access step's nearest-facility routing instead of the location model's cost matrix
    lay = result.layers
    fac = lay["facilities"]
    cands = lay["candidates"]
    ok = cands["tier"].isna() | (cands["tier"] == "community_station")
    centres = lay["proposed_sites"]
    sites = pd_concat([fac[fac["tier"].isin(["community_station", "township_centre"])],
                       cands[ok].assign(tier="community_station"),
                       centres[centres["tier"] == "township_centre"]])
    pa = A.population_access(result.artifacts["network"], lay["population"], sites,
                             gates=lay.get("gates"), thresholds_min=[15], warn=False)
    far = pa.loc[~(pa["time_min_any"] <= 15) & (pa["pop_60plus"] > 0), "id"].astype(str)
    assert sorted(table["id"].astype(str)) == sorted(far)
    assert len(table) == 5 and table["pop_60plus"].sum() == 3682
    assert (table["time_min_nearest_candidate"].fillna(np.inf) > 15).all()


def pd_concat(frames):
    import geopandas as gpd
    import pandas as pd

    return gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), crs=frames[0].crs)


def test_an_english_run_records_english_warnings(tmp_path):
    import warnings

    import planner

    path = demo_scenario(tmp_path, lambda d: d.update(lang="en"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = planner.run(path, steps=["layers", "demand", "network", "access", "norms",
                                          "locate"])
    assert result.warnings == [
        "locate (community stations, LSCP): 5 population units (weight 3682) have no candidate "
        "nor existing site within 15 min and cannot be covered (春晖社区, 凤鸣社区, 和平社区, "
        "桃源社区, 长春社区); they are listed in the table `uncoverable_units` with their "
        "nearest candidate. Add candidate sites near them."]
    assert len(result.tables["uncoverable_units"]) == 5


# --------------------------------------------------------------------------- 12: p > candidates
def test_station_pmedian_asking_for_more_sites_than_candidates_warns_with_both_numbers(tmp_path):
    import warnings

    import planner
    from planner._errors import PlannerWarning

    path = demo_scenario(tmp_path, lambda d: d.update(lang="en") or d["locate"].update(
        community_station={"model": "pmedian", "p": 100}))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = planner.run(path, steps=["layers", "demand", "network", "access", "norms",
                                          "locate"])
    cands = result.layers["candidates"]
    centres = set(result.tables["proposed_sites"].query("tier == 'township_centre'")
                  ["candidate_id"].astype(str))
    free = cands[(cands["tier"].isna() | (cands["tier"] == "community_station"))
                 & ~cands["id"].astype(str).isin(centres)]
    n = len(free)
    assert 0 < n < 100
    msg = (f"locate (community stations): 100 new sites asked for but only {n} candidate "
           f"site(s) may host one; all {n} are proposed.")
    assert any(str(w.message).startswith(msg) and issubclass(w.category, PlannerWarning)
               for w in caught)
    assert any(w.startswith(msg) for w in result.warnings)
    stations = result.tables["proposed_sites"].query("tier == 'community_station'")
    assert len(stations) == n


# --------------------------------------------------------------------------- 13: absent columns
@pytest.fixture(scope="module")
def demo_layers():
    import warnings

    import planner
    from planner.pipeline import demo_scenario_path

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return planner.run(demo_scenario_path(),
                           steps=["layers", "demand", "network", "access"]).layers


#: Facility columns, and the measures (of the Xi'an rules) that read each.
ABSENT = {
    "floor_area_m2": ("community_floor_per_100_households", "facility_floor_area"),
    "land_area_m2": ("land_per_resident",),
    "beds": ("beds_per_1000_older", "public_beds_share", "nursing_bed_share", "facility_beds",
             "facility_nursing_share", "social_workers_per_100_beds"),
    "nursing_beds": ("nursing_bed_share", "facility_nursing_share"),
    "public": ("public_beds_share", "public_home_count"),
    "social_workers": ("social_workers_per_1000_older", "social_workers_per_100_beds"),
    "tier": ("community_floor_per_100_households", "beds_per_1000_older", "public_beds_share",
             "nursing_bed_share", "community_station_count", "township_centre_count",
             "township_centre_coverage", "public_home_count", "social_workers_per_100_beds"),
}


@pytest.mark.parametrize("column", list(ABSENT))
def test_a_rule_whose_column_is_absent_is_not_assessable_naming_it(demo_layers, column):
    from planner import norms

    lay = demo_layers
    rules = norms.load_rules("xian_2021", plan_year=2025)
    fac = lay["facilities"].drop(columns=[column])
    table = norms.check(rules, population=lay["population"], facilities=fac,
                        townships=lay["townships"], districts=lay["districts"],
                        access=lay["population_access"])
    for measure in ABSENT[column]:
        rows = table[table["measure"] == measure]
        assert len(rows), measure
        assert set(rows["status"]) == {"not_assessable"}, (measure, rows["status"].tolist())
        assert rows["missing"].str.contains(f"facilities.{column}", regex=False).all(), measure
    # measures that do not read the column are unchanged
    full = norms.check(rules, population=lay["population"], facilities=lay["facilities"],
                       townships=lay["townships"], districts=lay["districts"],
                       access=lay["population_access"])
    others = ~full["measure"].isin(ABSENT[column])
    if column != "tier":
        assert table.loc[others, "status"].tolist() == full.loc[others, "status"].tolist()


# --------------------------------------------------------------------------- 11: impossible counts
def _demo_communities():
    import geopandas as gpd

    return gpd.read_file(DEMO_DIR / "demo.gpkg", layer="communities")


def test_impossible_counts_are_errors_naming_the_rows_and_validate_finds_them(tmp_path):
    from planner._errors import LayerError
    from planner.layers import read_layer

    com = _demo_communities()
    com.loc[0, "population"] = 1e15                                    # row 1: 1e15 residents
    com.loc[1, "pop_60plus"] = com.loc[1, "population"] + 1            # row 2: 60+ > all
    com.loc[2, ["pop_60plus", "pop_65plus", "pop_80plus"]] = [500, 600, 700]  # row 3: 80+>65+>60+
    com.loc[3, "households"] = com.loc[3, "population"] * 2            # row 4: households > all
    names = com["name"].tolist()
    path = tmp_path / "communities.gpkg"
    com.to_file(path, layer="communities")
    with pytest.raises(LayerError) as info:
        read_layer(path, kind="population")
    msg = str(info.value)
    assert (f"column `population`: impossible value(s) 1e+15 in row 1 ({names[0]}): more than "
            "China's whole population") in msg
    assert f"`pop_60plus` is larger than `population` ({com.loc[1, 'pop_60plus']:g} > " \
           f"{com.loc[1, 'population']:g}) in row 2 ({names[1]})" in msg
    assert f"`pop_65plus` is larger than `pop_60plus` (600 > 500) in row 3 ({names[2]})" in msg
    assert f"`pop_80plus` is larger than `pop_65plus` (700 > 600) in row 3 ({names[2]})" in msg
    assert "`households` is larger than `population`" in msg and f"row 4 ({names[3]})" in msg
    # planner validate stops on it before any long step
    path_s = demo_scenario(tmp_path, lambda d: d["layers"].update(
        population={"path": str(path), "layer": "communities"}))
    res = invoke("validate", path_s)
    assert res.exit_code == 2 and "impossible value(s) 1e+15" in res.output
    assert "读取图层" in res.output and "步行路网" not in res.output  # stopped at the layers


def test_an_implausibly_dense_unit_is_a_warning_with_its_density(tmp_path):
    from planner._errors import PlannerWarning
    from planner.layers import read_layer

    com = _demo_communities()
    area_km2 = com.to_crs(32649).geometry.area.iloc[5] / 1e6
    com.loc[5, "population"] = int(area_km2 * 150_000)   # 150,000 per km²
    com.loc[5, "households"] = com.loc[5, "population"] // 3
    path = tmp_path / "communities.gpkg"
    com.to_file(path, layer="communities")
    density = com.loc[5, "population"] / area_km2
    with pytest.warns(PlannerWarning) as rec:
        gdf = read_layer(path, kind="population", target_crs="EPSG:32649")
    msgs = [str(w.message) for w in rec if "per km²" in str(w.message)]
    assert len(msgs) == 1
    assert (f"1 unit(s) have more than 100,000 residents per km² of their polygon (row 6 "
            f"({com.loc[5, 'name']}): {density:,.0f} per km²)") in msgs[0]
    assert [w.message.zh for w in rec if "per km²" in str(w.message)][0].startswith(
        "图层 communities.gpkg：1 个单元每平方公里人口超过 100,000")
    assert gdf["population"].iloc[5] == com.loc[5, "population"]  # a warning, data unchanged


# --------------------------------------------------------------------------- 9, 15: Excel sheets
def _facilities_table():
    import pandas as pd

    return pd.read_csv(DEMO_DIR / "demo_facilities.csv")


def _workbook(path: Path, sheets: dict) -> Path:
    import pandas as pd

    with pd.ExcelWriter(path) as xw:
        for name, df in sheets.items():
            df.to_excel(xw, sheet_name=name, index=False)
    return path


def test_data_split_over_two_sheets_is_an_error_listing_them_and_all_stacks_them(tmp_path):
    from planner._errors import LayerError
    from planner.layers import read_layer

    fac = _facilities_table()
    half = len(fac) // 2
    book = _workbook(tmp_path / "fac.xlsx", {"城区": fac.iloc[:half], "郊区": fac.iloc[half:]})
    with pytest.raises(LayerError) as info:
        read_layer(book, kind="facilities", coord_system="gcj02")
    msg = str(info.value)
    assert f"has data on 2 sheets: '城区' ({half} rows; columns: " in msg
    assert f"'郊区' ({len(fac) - half} rows; columns: " in msg
    assert "`sheet:` to a sheet name, a 0-based sheet number, or `all`" in msg
    whole = read_layer(DEMO_DIR / "demo_facilities.csv", kind="facilities", coord_system="gcj02")
    both = read_layer(book, kind="facilities", coord_system="gcj02", sheet="all")
    assert len(both) == len(fac)
    assert both["name"].tolist() == whole["name"].tolist()
    assert both.geometry.geom_equals_exact(whole.geometry, 1e-6).all()
    assert both["source_sheet"].tolist() == ["城区"] * half + ["郊区"] * (len(fac) - half)
    second = read_layer(book, kind="facilities", coord_system="gcj02", sheet=1)
    assert second["name"].tolist() == fac["名称"].iloc[half:].tolist()
    assert len(read_layer(book, kind="facilities", coord_system="gcj02", sheet="城区")) == half
    with pytest.raises(LayerError, match=r"no sheet named '农村'; its sheets: '城区'"):
        read_layer(book, kind="facilities", coord_system="gcj02", sheet="农村")


def test_sheet_all_names_the_sheet_whose_columns_differ(tmp_path):
    from planner._errors import LayerError
    from planner.layers import read_layer

    fac = _facilities_table()
    other = fac.iloc[3:].drop(columns=[fac.columns[-1]]).assign(备注="x")
    book = _workbook(tmp_path / "fac.xlsx", {"一": fac.iloc[:3], "二": other})
    with pytest.raises(LayerError, match=rf"sheet '二' differs from sheet '一': it lacks "
                                         rf"{fac.columns[-1]}; it adds 备注"):
        read_layer(book, kind="facilities", coord_system="gcj02", sheet="all")


def test_a_notes_sheet_first_names_the_sheets_not_lon_column(tmp_path):
    import pandas as pd

    from planner._errors import LayerError
    from planner.layers import read_layer

    notes = pd.DataFrame({"填表说明": ["坐标为高德（GCJ-02）", "床位数单位：张"]})
    book = _workbook(tmp_path / "fac.xlsx", {"说明": notes, "设施": _facilities_table()})
    with pytest.raises(LayerError) as info:
        read_layer(book, kind="facilities", coord_system="gcj02")
    msg = str(info.value)
    assert "'说明' (2 rows; columns: 填表说明)" in msg and "'设施' (" in msg
    assert "lon_column" not in msg
    n = len(_facilities_table())
    assert len(read_layer(book, kind="facilities", coord_system="gcj02", sheet="设施")) == n


def test_census_workbook_with_several_sheets_names_them_and_demand_sheet(tmp_path):
    import pandas as pd

    from planner._errors import DemandError
    from planner.demand import read_census

    census = pd.read_csv(DEMO_DIR / "demo_census_2020.csv")
    notes = pd.DataFrame({"说明": ["第七次全国人口普查"]})
    book = _workbook(tmp_path / "census.xlsx", {"说明": notes, "街道": census})
    with pytest.raises(DemandError, match=r"has data on 2 sheets: '说明' .*'街道' .*set "
                                          r"`demand.sheet:`"):
        read_census(book)
    got = read_census(book, sheet="街道")
    assert got["population"].tolist() == read_census(DEMO_DIR / "demo_census_2020.csv")[
        "population"].tolist()


# --------------------------------------------------------------------------- 15: vague errors
def test_a_layer_path_that_is_a_folder_names_its_files(tmp_path):
    import shutil

    from planner._errors import LayerError
    from planner.layers import read_layer

    folder = tmp_path / "data"
    folder.mkdir()
    shutil.copy(DEMO_DIR / "demo_facilities.csv", folder / "facilities.csv")
    with pytest.raises(LayerError, match=r"is a folder, not a layer file; it holds "
                                         r"facilities\.csv\. Give the path of the file itself "
                                         r"\(e\.g\. .*facilities\.csv\)"):
        read_layer(folder, kind="facilities", name="facilities")
    # a folder of Shapefiles is a layer GDAL reads
    shp = tmp_path / "shp"
    shp.mkdir()
    _demo_communities().to_file(shp / "communities.shp", encoding="utf-8")
    assert len(read_layer(shp, kind="population")) == len(_demo_communities())


def test_did_you_mean_needs_more_in_common_than_an_administrative_ending():
    from planner.demand import close_names

    assert close_names("定海路街道", ["四平路街道", "江浦路街道"]) == []
    assert close_names("定海路街道", ["四平路街道", "定海街道"]) == ["定海街道"]
    assert close_names("东成街道", ["东城街道", "西河街道", "南山街道"]) == ["东城街道"]
    assert close_names("雁塔", ["雁塔区", "碑林区"]) == ["雁塔区"]
    assert close_names("北湖街道", ["东城街道", "西河街道", "南山街道"]) == []


def _census_with(tmp_path: Path, row: int, name: str, which: str = "2020") -> Path:
    import pandas as pd

    table = pd.read_csv(DEMO_DIR / f"demo_census_{which}.csv")
    table.loc[row, "区县"] = name
    path = tmp_path / f"census_{which}.csv"
    table.to_csv(path, index=False)
    return path


def test_census_names_that_match_no_boundary_name_the_file_and_offer_no_unrelated_name(tmp_path):
    import warnings

    import planner
    from planner._errors import DemandError

    census = _census_with(tmp_path, 0, "北湖街道")

    def edit(d):
        d["demand"].update(census=str(census), use_for_population=True)
        del d["layers"]["population"]
    path = demo_scenario(tmp_path, edit)
    with warnings.catch_warnings(), pytest.raises(DemandError) as info:
        warnings.simplefilter("ignore")
        planner.run(path, steps=["layers", "demand"])
    msg = str(info.value)
    assert f"census table {census} match no 'name' of the area layer" in msg
    assert "demo.gpkg" in msg and "'北湖街道'" in msg
    assert "did you mean" not in msg  # 北湖 and 东城/西河/南山 share nothing but 街道


def test_changed_current_census_names_both_files_without_blaming_the_previous(tmp_path):
    import warnings

    import planner
    from planner._errors import DemandError

    census = _census_with(tmp_path, 0, "定海路街道")
    path = demo_scenario(tmp_path, lambda d: d["demand"].update(census=str(census)))
    with warnings.catch_warnings(), pytest.raises(DemandError) as info:
        warnings.simplefilter("ignore")
        planner.run(path, steps=["layers", "demand"])
    msg = str(info.value)
    previous = DEMO_DIR / "demo_census_2010.csv"
    assert (f"'定海路街道' is in the census {census} but not in the previous census "
            f"{previous}") in msg
    assert f"the previous census {previous} has area(s) that the census {census} lacks: " \
           "'东城街道'" in msg
    assert "boundar" not in msg
