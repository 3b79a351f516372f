"""The four central Xi'an districts as parts of a batch equal one run over them (issue 15).

Real data (../shared/data/xian; skipped where absent): OSM roads, OSM
residential land with the 2020 census spread over it by district, the
GCJ-02 district boundaries, and 24 test sites (not real facilities) at
residential polygons across the four districts.  The batch runs each
district as a part (a 15-minute cut-off keeps the cuts small) and must give
every estimated population unit the walking times, and every district the
coverage and norm checks, of one run over the whole area.
"""

from __future__ import annotations

import warnings

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest

import planner
from planner.batch import run_batch

pytestmark = [pytest.mark.xian, pytest.mark.slow]

CORE4 = {"610102": "新城区", "610103": "碑林区", "610104": "莲湖区", "610113": "雁塔区"}


@pytest.fixture(scope="module")
def scenario_file(xian_dir, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("xian_batch")
    res = gpd.read_file(xian_dir / "xian_landuse_residential.gpkg")
    pts = res.geometry.representative_point().to_crs(4326)
    picks = np.linspace(0, len(res) - 1, 24).round().astype(int)  # spread over the file
    pd.DataFrame({"编号": [f"S{k + 1:02d}" for k in range(len(picks))],
                  "名称": [f"测试站{k + 1}" for k in range(len(picks))],
                  "类型": ["社区养老服务站"] * len(picks),
                  "lon": pts.x.to_numpy()[picks], "lat": pts.y.to_numpy()[picks]}
                 ).to_csv(tmp / "facilities.csv", index=False)
    (tmp / "xian.yaml").write_text(f"""
name: 西安中心城区 (batch)
layers:
  districts: {{path: {xian_dir / "xian_districts_datav_gcj02.json"}, coord_system: gcj02}}
  residential: {xian_dir / "xian_landuse_residential.gpkg"}
  facilities: facilities.csv
network: {{source: lines, path: {xian_dir / "xian_road.kml"}}}
access: {{cutoff_min: 15, service_areas: false}}
demand:
  census: {xian_dir / "xian_core4_districts_census2020.csv"}
  census_previous: {xian_dir / "xian_core4_districts_census2010.csv"}
  area_layer: districts
norms: {{rules: xian_2021}}
outputs: {{map: false, report: false, excel: false}}
""", encoding="utf-8")
    return tmp / "xian.yaml"


@pytest.fixture(scope="module")
def whole(scenario_file):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return planner.run(scenario_file, out_dir=None,
                           steps=["layers", "demand", "network", "access", "norms"])


@pytest.fixture(scope="module")
def batch(scenario_file, tmp_path_factory):
    return run_batch(scenario_file, by="districts", parts=list(CORE4),
                     out_dir=tmp_path_factory.mktemp("xian_batch_out"), scheduler="sync",
                     progress=False)


def test_four_districts_as_parts_equal_the_whole_run(batch, whole):
    assert batch.ok, [o.error for o in batch.failed]
    assert [o.part for o in batch.parts] == list(CORE4)
    got = batch.layers["population_access"].set_index("id").sort_index()
    want = whole.layers["population_access"]
    want = want[want["district"].isin(CORE4.values())].set_index("id").sort_index()
    assert list(got.index) == list(want.index)  # every estimated unit, in exactly one part
    assert got["population"].sum() == 617986 + 756840 + 1019102 + 2046737
    for col in ("time_min_any", "time_min_community_station", "snap_m"):
        np.testing.assert_array_equal(got[col].to_numpy(float), want[col].to_numpy(float),
                                      err_msg=col)
    # residents near a district border walk to a site in the next district
    site_part = batch.layers["facilities"].set_index("id")["part"]
    across = got["nearest_id"].map(site_part).fillna(got["part"]) != got["part"]
    assert across.sum() >= 3
    cov = batch.tables["coverage"]
    mine = cov[cov["scope"] == "district"].set_index(["tier", "minutes", "area"]).sort_index()
    theirs = whole.tables["coverage"]
    theirs = theirs[(theirs["scope"] == "district") & theirs["area"].isin(CORE4.values())]
    theirs = theirs.set_index(["tier", "minutes", "area"]).sort_index()
    for col in ("pop_60plus", "pop_60plus_within", "n_units_within"):
        np.testing.assert_array_equal(mine[col].to_numpy(float), theirs[col].to_numpy(float))


def test_district_norm_checks_equal_the_whole_run(batch, whole):
    key = ["rule_id", "unit_id"]
    got = batch.tables["norm_checks"]
    got = got[got["scope"] == "district"].astype(str).sort_values(key).reset_index(drop=True)
    want = whole.tables["norm_checks"]
    want = want[(want["scope"] == "district") & want["unit_id"].astype(str).isin(CORE4)]
    want = want.astype(str).sort_values(key).reset_index(drop=True)
    assert len(got) == len(want) > 0
    for col in ("rule_id", "unit_id", "status"):
        assert got[col].tolist() == want[col].tolist()
    np.testing.assert_allclose(pd.to_numeric(got["value"], errors="coerce"),
                               pd.to_numeric(want["value"], errors="coerce"), rtol=1e-12)
