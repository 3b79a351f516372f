"""Province-scale runs (issue 15): parts on Dask equal one run over the whole area.

A generated province of 2 x 2 demo districts (`planner.demo_province`) that
share one road network, register and census is run three ways: once whole
(`planner.run`), as a serial batch (``scheduler="sync"``) and as a batch on
a two-worker ``LocalCluster``.  Per-unit walking times, 2SFCA scores,
coverage tables and norm checks must be equal, border residents whose
nearest facility is in the next district included; the merged tables must
be byte-identical between the two batches.
"""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import planner
from planner.batch import Reach, run_batch
from planner.batch.parts import Cutter, list_parts, owners, reach_of
from planner.batch.sweep import apply, parse_sweep, split_values
from planner.demo_province import province_yaml, write_province

KEY = ["rule_id", "scope", "unit_id"]
TIME_COLUMNS = ["time_min_district_home", "time_min_township_centre",
                "time_min_community_station", "time_min_rural_point", "time_min_any"]


def _light(text: str) -> str:
    """The province scenario without service areas, map, report or workbook (fast)."""
    text = text.replace("  cutoff_min: 30\n", "  cutoff_min: 30\n  service_areas: false\n")
    for key in ("map", "excel", "report"):
        text = text.replace(f"  {key}: true\n", f"  {key}: false\n")
    return text


@pytest.fixture(scope="module")
def province(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("province")
    write_province(folder, 2, 2)
    path = folder / "light.yaml"
    path.write_text(_light(province_yaml(n_districts=4)), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def whole(province):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return planner.run(province, out_dir=None)


@pytest.fixture(scope="module")
def serial(province, tmp_path_factory):
    out = tmp_path_factory.mktemp("serial")
    return run_batch(province, by="districts", out_dir=out, scheduler="sync", progress=False)


@pytest.fixture(scope="module")
def cluster(province, tmp_path_factory):
    from distributed import Client, LocalCluster

    out = tmp_path_factory.mktemp("cluster")
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                      dashboard_address=None) as lc, Client(lc) as client:
        return run_batch(province, by="districts", out_dir=out, client=client, progress=True)


def _by_id(df: pd.DataFrame) -> pd.DataFrame:
    return df.assign(id=df["id"].astype(str)).set_index("id").sort_index()


def _assert_same_access(batch, whole) -> None:
    got = _by_id(batch.layers["population_access"])
    want = _by_id(whole.layers["population_access"])
    assert list(got.index) == list(want.index)  # every resident, counted once
    for col in TIME_COLUMNS + ["snap_m"]:
        np.testing.assert_array_equal(got[col].to_numpy(float), want[col].to_numpy(float),
                                      err_msg=col)
    assert (got["nearest_id"].fillna("") == want["nearest_id"].fillna("")).all()
    fca_b = batch.tables["fca"].assign(id=lambda d: d["id"].astype(str)).set_index("id")
    fca_w = whole.tables["fca"].set_index("id")
    np.testing.assert_array_equal(fca_b.loc[fca_w.index, "accessibility"].to_numpy(float),
                                  fca_w["accessibility"].to_numpy(float))


def _assert_same_coverage(batch, whole) -> None:
    got = batch.tables["coverage"].drop(columns=["part"]).reset_index(drop=True)
    want = whole.tables["coverage"].reset_index(drop=True)
    assert list(got.columns) == list(want.columns)
    pd.testing.assert_frame_equal(got.drop(columns=["district"]), want.drop(columns=["district"]),
                                  check_dtype=False)
    assert (got["district"].fillna("").astype(str)
            == want["district"].fillna("").astype(str)).all()


def _assert_same_norms(batch, whole) -> None:
    got = batch.tables["norm_checks"].drop(columns=["part"])
    want = whole.tables["norm_checks"]
    got = got.astype(str).replace({"nan": "", "None": "", "<NA>": ""})
    want = want.astype(str).replace({"nan": "", "None": "", "<NA>": ""})
    got = got.sort_values(KEY).reset_index(drop=True)
    want = want.sort_values(KEY).reset_index(drop=True)
    assert len(got) == len(want) and set(want["scope"]) >= {"community", "township", "district"}
    for col in want.columns:
        if col in ("value", "threshold", "shortfall"):
            np.testing.assert_allclose(pd.to_numeric(got[col]).to_numpy(float),
                                       pd.to_numeric(want[col]).to_numpy(float), rtol=1e-12,
                                       err_msg=col)
        else:
            assert (got[col] == want[col]).all(), col


def test_serial_batch_equals_one_run_over_the_whole_area(serial, whole):
    assert serial.ok and [o.status for o in serial.parts] == ["done"] * 4
    _assert_same_access(serial, whole)
    _assert_same_coverage(serial, whole)
    _assert_same_norms(serial, whole)


def test_cluster_batch_equals_one_run_over_the_whole_area(cluster, whole):
    assert cluster.ok and cluster.workers == 2 and "cluster" in cluster.scheduler
    _assert_same_access(cluster, whole)
    _assert_same_coverage(cluster, whole)
    _assert_same_norms(cluster, whole)


def test_border_residents_walk_to_the_next_district(serial, whole, province):
    pa = serial.layers["population_access"]
    fac = serial.layers["facilities"].set_index("id")["part"]
    across = pa[pa["nearest_id"].notna() & (pa["nearest_id"].map(fac) != pa["part"])]
    assert len(across) >= 5  # the generated province puts stations by its borders
    assert across["time_min_any"].notna().all()
    # the same parts cut without any buffer lose them: the buffer is what makes it exact
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scen = planner.load_scenario(province)
        res = planner.run(scen, out_dir=None, steps=["layers"])
        lines = planner.layers.read_layer(scen.resolve(scen.network.path), kind="lines",
                                          layer="roads", target_crs=res.crs)
        cutter = Cutter(res.layers, by="districts", lines=lines, area_layer="townships")
        part = next(p for p in list_parts(res.layers["districts"], by="districts")
                    if p.id == across["part"].iloc[0])
        cut = cutter.part(part.row, Reach(walk_m=0.0, snap_m=0.0))
        alone = planner.run(scen.model_copy(update={"output": None}), out_dir=None,
                            steps=["layers", "demand", "network", "access"],
                            preloaded=planner.pipeline.Preloaded(
                                layers=cut.layers, crs=res.crs, network=cut.lines))
    times = _by_id(alone.layers["population_access"])["time_min_any"]
    mine = across[across["part"] == part.id].assign(id=lambda d: d["id"].astype(str))
    assert len(mine)
    for uid, t in zip(mine["id"], mine["time_min_any"], strict=True):
        assert np.isnan(times[uid]) or times[uid] > t + 0.5


def test_batches_write_identical_tables_whatever_the_workers(serial, cluster):
    names = sorted(f.name for f in (serial.out_dir / "tables").glob("*.csv"))
    assert {"coverage.csv", "norm_checks.csv", "fca.csv", "demand_projection.csv"} <= set(names)
    assert names == sorted(f.name for f in (cluster.out_dir / "tables").glob("*.csv"))
    for name in names + ["../summary.csv"]:
        a = (serial.out_dir / "tables" / name).read_bytes()
        b = (cluster.out_dir / "tables" / name).read_bytes()
        assert a == b, name
    # rows are ordered by part (boundary-layer order), then each part's own order
    cov = pd.read_csv(serial.out_dir / "tables" / "norm_checks.csv", dtype=str)
    assert list(dict.fromkeys(cov["part"])) == ["410001", "410002", "410003", "410004"]


def test_outputs_per_part_and_for_the_whole_area(serial, whole):
    for o in serial.parts:
        folder = serial.out_dir / "parts" / o.folder
        info = json.loads((folder / "run.json").read_text(encoding="utf-8"))
        assert info["status"] == "done" and info["batch"]["part"] == o.part
        assert (folder / "layers.gpkg").is_file() and (folder / "tables" / "coverage.csv").is_file()
        assert o.peak_rss_mb > 50 and o.seconds > 0
    batch = json.loads((serial.out_dir / "batch.json").read_text(encoding="utf-8"))
    assert [p["status"] for p in batch["parts"]] == ["done"] * 4
    assert all(p["peak_rss_mb"] > 0 and p["seconds"] > 0 for p in batch["parts"])
    summary = serial.summary.set_index("part")
    pa = whole.layers["population_access"]
    for o in serial.parts:
        own = pa[pa["district"] == o.name]
        assert summary.loc[o.part, "pop_60plus"] == own["pop_60plus"].sum()
        share = own.loc[own["time_min_any"] <= 15, "pop_60plus"].sum() / own["pop_60plus"].sum()
        assert summary.loc[o.part, "pop_60plus_within_15min_share"] == pytest.approx(share)
        fails = whole.tables["norm_checks"]
        assert summary.loc[o.part, "norm_failures"] == serial.tables["norm_checks"].query(
            "part == @o.part and status == 'fail'").shape[0]
    total = summary.loc[""]
    assert total["pop_60plus"] == pa["pop_60plus"].sum()
    assert total["norm_failures"] == (fails["status"] == "fail").sum()
    assert set(serial.layers) >= {"population_access", "facilities", "townships", "districts"}
    assert "network_edges" not in serial.layers and "facilities_nearby" not in serial.layers
    assert len(serial.layers["facilities"]) == len(whole.layers["facilities"])


def test_rerun_reuses_parts_with_the_same_inputs_and_settings(serial, tmp_path, province):
    out = tmp_path / "out"
    shutil.copytree(serial.out_dir, out)
    again = run_batch(province, by="districts", out_dir=out, scheduler="sync", progress=False)
    assert [o.status for o in again.parts] == ["reused"] * 4
    assert (out / "tables" / "coverage.csv").read_bytes() == \
        (serial.out_dir / "tables" / "coverage.csv").read_bytes()
    # a part whose run.json records other settings, or other inputs, runs again
    for folder, key in (("410002", "batch"), ("410003", "inputs")):
        info_path = out / "parts" / folder / "run.json"
        info = json.loads(info_path.read_text(encoding="utf-8"))
        if key == "batch":
            info["batch"]["settings_sha256"] = "0" * 64
        else:
            first = next(iter(info["inputs"]))
            info["inputs"][first]["sha256"] = "0" * 64
        info_path.write_text(json.dumps(info), encoding="utf-8")
    third = run_batch(province, by="districts", out_dir=out, scheduler="sync", progress=False)
    assert [o.status for o in third.parts] == ["reused", "done", "done", "reused"]
    assert (out / "tables" / "norm_checks.csv").read_bytes() == \
        (serial.out_dir / "tables" / "norm_checks.csv").read_bytes()


@pytest.fixture(scope="module")
def broken(province, tmp_path_factory) -> Path:
    """The province with no census rows for 示范2区's townships (its units match none)."""
    folder = tmp_path_factory.mktemp("broken")
    for f in province.parent.iterdir():
        shutil.copy(f, folder / f.name)
    for name in ("province_census_2020.csv", "province_census_2010.csv"):
        table = pd.read_csv(folder / name, dtype=str)
        table[~table["区县"].str.startswith("示范2区")].to_csv(folder / name, index=False)
    return folder / "light.yaml"


def test_a_part_with_bad_data_fails_alone_with_the_message_of_planner_run(broken, tmp_path):
    from planner._errors import error_text

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(planner.DemandError) as whole_error:
            planner.run(broken, out_dir=None, steps=["layers", "demand"])
    result = run_batch(broken, by="districts", out_dir=tmp_path / "out", scheduler="sync",
                       parts=["410001", "示范2区"], progress=False)
    status = {o.part: o for o in result.parts}
    assert list(status) == ["410001", "410002"]
    assert status["410001"].status == "done"
    assert status["410002"].status == "failed" and status["410002"].exit_code == 2
    assert status["410002"].error == error_text(whole_error.value)[0]
    assert "示范2区东城街道" in status["410002"].error
    assert not result.ok and result.failed == [status["410002"]]
    assert set(result.tables["norm_checks"]["part"]) == {"410001"}
    summary = result.summary.set_index("part")
    assert summary.loc["410002", "status"] == "failed" and summary.loc["410002", "pop_60plus"] == 0
    info = json.loads((result.out_dir / "batch.json").read_text(encoding="utf-8"))
    assert info["failed"] == 1 and info["parts"][1]["error"] == status["410002"].error


def test_cli_batch_exit_code_and_sweep(broken, province, tmp_path):
    from click.testing import CliRunner

    from planner.cli import cli

    runner = CliRunner()
    res = runner.invoke(cli, ["batch", str(broken), "--by", "districts", "--part", "410002",
                              "--scheduler", "sync", "-o", str(tmp_path / "bad")])
    assert res.exit_code == 1, res.output
    assert "Error: Population units: their 'township' value(s)" in res.output
    res = runner.invoke(cli, ["batch", str(province), "--by", "districts", "--part", "410001",
                              "--scheduler", "sync", "--sweep", "network.speed_mps=0.8,1.0",
                              "-o", str(tmp_path / "sweep")])
    assert res.exit_code == 0, res.output
    table = pd.read_csv(tmp_path / "sweep" / "comparison.csv")
    assert list(table["network.speed_mps"]) == [0.8, 1.0]
    slow, fast = table["pop_60plus_within_15min_share"]
    assert slow < fast  # slower walkers reach less within 15 minutes
    assert (tmp_path / "sweep" / "comparison.html").is_file()
    assert (tmp_path / "sweep" / "speed_mps=0.8" / "parts" / "410001" / "run.json").is_file()


def test_reach_covers_the_walk_the_snaps_and_2sfca(province):
    scen = planner.load_scenario(province)
    r = reach_of(scen)  # 30 min at 1.0 m/s, 300 m snaps, 15-min 2SFCA catchment
    assert (r.walk_m, r.snap_m, r.fca_m) == (1800.0, 300.0, 900.0)
    assert r.facilities_m == 1800 + 600 and r.population_m == 1800 + 600
    assert r.network_m == 2400 + 300
    assert Reach(walk_m=900, snap_m=100).population_m == 0  # no 2SFCA: no neighbours' residents


def test_owners_take_the_first_part_covering_a_point():
    import geopandas as gpd
    import shapely

    polys = np.array([shapely.box(0, 0, 10, 10), shapely.box(10, 0, 20, 10)], dtype=object)
    pts = gpd.GeoDataFrame(geometry=[shapely.Point(5, 5), shapely.Point(10, 5),
                                     shapely.Point(15, 5), shapely.Point(30, 5),
                                     shapely.box(9, 1, 19, 2)])
    # a point on the shared edge goes to the first part; a polygon by its representative point
    assert owners(pts, polys).tolist() == [0, 0, 1, -1, 1]
    # the row's own column first (a part's name, else its id; a repeated name decides
    # nothing), then the polygon, then (asked for) the nearest part
    parts = pd.DataFrame({"id": ["A", "B"], "name": ["东区", "西区"]})
    pts["district"] = ["西区", None, "A", "北区", " 东区 "]
    assert owners(pts, polys, parts=parts, column="district").tolist() == [1, 0, 0, -1, 0]
    assert owners(pts, polys, parts=parts, column="district", nearest=True).tolist() == [
        1, 0, 0, 1, 0]
    twice = pd.DataFrame({"id": ["A", "B"], "name": ["东区", "东区"]})
    assert owners(pts, polys, parts=twice, column="district").tolist() == [0, 0, 0, -1, 1]


def test_parts_need_unique_ids_and_known_names():
    import geopandas as gpd
    import shapely

    b = gpd.GeoDataFrame({"id": ["1", "2", "2"], "name": ["a", "b", "c"]},
                         geometry=[shapely.box(0, 0, 1, 1)] * 3)
    with pytest.raises(planner.LayerError, match="repeated ids"):
        list_parts(b, by="districts")
    b["id"] = ["1", "2", "x/y"]
    parts = list_parts(b, by="districts")
    assert [p.folder for p in parts] == ["1", "2", "x_y"] and [p.row for p in parts] == [0, 1, 2]
    assert [p.id for p in list_parts(b, by="districts", only=["c", "1"])] == ["1", "x/y"]
    with pytest.raises(planner.ScenarioError, match="No part nope"):
        list_parts(b, by="districts", only=["nope"])


def test_sweep_values_and_keys(province):
    assert split_values("0.8,1.0") == ["0.8", "1.0"]
    assert split_values("[5,10],[10, 15]") == ["[5,10]", "[10, 15]"]
    assert parse_sweep(["access.thresholds_min=[5,10],[15]"]) == [
        ("access.thresholds_min", [[5, 10], [15]])]
    scen = planner.load_scenario(province)
    assert apply(scen, {"norms.plan_year": 2030}).norms.plan_year == 2030
    assert apply(scen, {"network.speed_mps": 0.8}).network.speed_mps == 0.8
    with pytest.raises(planner.ScenarioError, match="network.sped_mps"):
        apply(scen, {"network.sped_mps": 0.8})
    with pytest.raises(planner.ScenarioError, match="key=value"):
        parse_sweep(["network.speed_mps"])


def test_demo_province_runs_the_batch_with_a_map_and_report_of_the_whole_area(tmp_path):
    from click.testing import CliRunner

    from planner.cli import cli

    res = CliRunner().invoke(cli, ["demo", "--province", "--size", "2x1", "--scheduler", "sync",
                                   "-o", str(tmp_path)])
    assert res.exit_code == 0, res.output
    out = tmp_path / "batch"
    for name in ("report.html", "map.html", "planner.xlsx", "layers.gpkg", "summary.csv",
                 "batch.json", "tables/coverage.csv"):
        assert (out / name).is_file(), name
    for part in ("410001", "410002"):  # each part: the files `planner run` writes
        assert {"report.html", "map.html", "layers.gpkg", "run.json"} <= {
            f.name for f in (out / "parts" / part).iterdir()}
    summary = pd.read_csv(out / "summary.csv", dtype={"part": str})
    assert summary["name"].tolist() == ["示范1区", "示范2区", "全部"]
    assert summary["pop_60plus"].tolist() == [46347, 46347, 2 * 46347]
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "示范1区 (410001)" in page and "示范2区 (410002)" in page


def test_township_parts_equal_the_whole_run_district_rows_checked_once(province, whole,
                                                                       tmp_path):
    towns = whole.layers["townships"]
    mine = towns.loc[towns["district"] == "示范1区", "id"].astype(str).tolist()
    result = run_batch(province, by="townships", parts=mine, out_dir=tmp_path / "out",
                       scheduler="sync", progress=False)
    assert result.ok and [o.part for o in result.parts] == mine
    got = _by_id(result.layers["population_access"])
    want = _by_id(whole.layers["population_access"])
    want = want[want["district"] == "示范1区"]
    assert list(got.index) == list(want.index)
    np.testing.assert_array_equal(got["time_min_any"].to_numpy(float),
                                  want["time_min_any"].to_numpy(float))
    norms = result.tables["norm_checks"]
    district = norms[norms["scope"] == "district"]
    assert set(district["unit_name"]) == {"示范1区"} and (district["part"] == "").all()
    theirs = whole.tables["norm_checks"]
    theirs = theirs[(theirs["scope"] == "district") & (theirs["unit_name"] == "示范1区")]
    assert sorted(district["rule_id"]) == sorted(theirs["rule_id"])
    assert dict(zip(district["rule_id"], district["status"], strict=True)) == dict(
        zip(theirs["rule_id"], theirs["status"], strict=True))
    township = norms[norms["scope"] == "township"].set_index(["rule_id", "unit_id"])["status"]
    theirs = whole.tables["norm_checks"]
    theirs = theirs[(theirs["scope"] == "township") & theirs["unit_id"].astype(str).isin(mine)]
    assert township.to_dict() == theirs.set_index(["rule_id", "unit_id"])["status"].to_dict()
