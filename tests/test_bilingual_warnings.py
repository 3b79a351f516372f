"""Warnings carry their Chinese text: a run in Chinese (the default) records them in Chinese.

Each test triggers warnings of a different module on a small hand-made input and checks
the Chinese text with the figures worked out by hand (the English texts are checked where
each module is tested).  `tests/test_architecture.py` checks the source for warnings issued
in English only.
"""

from __future__ import annotations

import re
import warnings

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from shapely.geometry import box

from planner import demand
from planner._errors import PlannerWarning
from planner.access import Snapped, coverage_table
from planner.demand.spread import area_points
from planner.pipeline import RunResult
from planner.pipeline.settings import Scenario

UTM = "EPSG:32649"
X0, Y0 = 300000.0, 3790000.0
CJK = re.compile(r"[\u4e00-\u9fff]")


def boxes(bounds, **cols):
    return gpd.GeoDataFrame(cols, geometry=[box(X0 + a, Y0 + b, X0 + c, Y0 + d)
                                            for a, b, c, d in bounds], crs=UTM)


def chinese(record) -> list[str]:
    """The Chinese texts of the caught warnings (each must have one, and differ from English)."""
    out = []
    for w in record:
        assert isinstance(w.message, PlannerWarning), w.message
        zh = w.message.zh
        assert zh and CJK.search(zh) and zh != str(w.message), str(w.message)
        assert w.message.text("zh") == zh and w.message.text("en") == str(w.message)
        out.append(zh)
    return out


def test_residential_land_warnings_in_chinese():
    areas = boxes([(0, 0, 100, 100)], name=["A区"])
    table = pd.DataFrame({"name": ["A区"], "population": [1000.0]})
    # a community outline over a compound: 15 000 m² of polygons over 10 000 m² of land
    res = boxes([(0, 0, 100, 100), (0, 0, 50, 100)], id=["community", "compound"],
                name=["幸福社区", "西北大学"])
    with pytest.warns(PlannerWarning) as rec:
        demand.allocate(areas, table, res)
    zh = chinese(rec)
    assert zh[0].startswith("需求：居住用地面相互重叠：面积合计 0.01 km²，是其实际覆盖的 "
                            "0.01 km² 的 1.50 倍。重复计算的 0.01 km² 已在分配居民前去除")
    assert "（1 个面被裁剪，0 个完全被较小的面覆盖" in zh[0]
    # the compound (a campus by its name) keeps its 5 000 m² of the 10 000: 50 %
    assert "有区域超过 10% 的居民被分配到看似校园、医院或体育场" in zh[1]
    assert "：A区 50%（西北大学）。" in zh[1]


def test_census_warnings_in_chinese():
    t = demand.read_census(pd.DataFrame({
        "街道": ["甲街道", "乙街道"], "常住人口": [1000, 2000], "60岁及以上人口占比": [25, 30]}))
    with pytest.warns(PlannerWarning) as rec:
        g = demand.older_groups(t)
    assert chinese(rec)[0].endswith(
        "只有总数（没有分性别的年龄组）：pop_60plus = 常住人口 × 普查表给出的该区域 60+ 人口占比"
        "（share_60plus）。本次运行的所有老年人口数都以此为据；它在 demand_columns 和报告中列为估算值。")
    with pytest.warns(PlannerWarning) as rec:
        demand.project_areas(g, on_missing="skip")
    # 2035 from a 2020 census: 15 years, two 10-year Hamilton-Perry steps, bands from 40 up
    assert chinese(rec) == [
        "无法推算 15 年后的老年人口（Hamilton-Perry 队列变动比法）：基期普查（普查表）没有分性别的 "
        "5 岁年龄组，需要 40 岁及以上各组（m_40_44 … f_85plus）；没有给出上次普查"
        "（demand.census_previous，基期前十年，需有 30 岁及以上分性别的 5 岁年龄组）。"
        "已跳过到 2025、2030、2035 年的推算，demand_projection 只含基期（2020 年）。"
        "如不需要推算，请设置 demand.plan_years: []。"]


def test_building_and_area_point_warnings_in_chinese():
    blds = boxes([(0, 0, 10, 10), (20, 0, 30, 10)], floors=[3, None])
    with pytest.warns(PlannerWarning) as rec:
        out = demand.residential_buildings(blds, floors_column="floors", default_floors=2)
    assert out["floor_area_m2"].tolist() == pytest.approx([300.0, 200.0])
    assert chinese(rec) == ["1 栋住宅建筑既没有层数也没有高度（floors，无高度列）：每栋按 2 层计。"]
    ar = boxes([(0, 0, 10, 10)])
    ar["_key"] = ["甲"]
    with pytest.warns(PlannerWarning) as rec:
        area_points(ar, ["甲"], "buildings", "住宅建筑")
    assert chinese(rec) == ["1 个区域没有住宅建筑：甲；其居民放在各区域内的一个代表点上（估算）。"]


def test_snap_and_coverage_warnings_in_chinese():
    one = np.array([0.0])
    snapped = Snapped(edge=np.array([0]), fraction=one, x=one, y=one, dist_m=np.array([450.0]),
                      far=np.array([True]), point_x=one, point_y=one, ids=np.array(["P1"]),
                      max_snap_m=300.0, moved=np.array([True]), fragment_m=np.array([40.0]))
    with pytest.warns(PlannerWarning) as rec:
        snapped.warn("population units")
    zh = chinese(rec)
    assert zh[0].startswith("1 个人口单元距最近的可步行道路超过 300 米：P1（450 米）。")
    assert zh[1].startswith("1 个人口单元离一小段与其余路网不连通、且没有设施的路网碎片最近；"
                            "已改为吸附到主路网，到主路网的直线步行距离已计入：P1（距碎片 40 米，"
                            "距主路网 450 米）。")
    pa = pd.DataFrame({"population": [10.0, 20.0], "pop_60plus": [0.0, 0.0],
                       "time_min_any": [5.0, 20.0]})
    with pytest.warns(PlannerWarning) as rec:
        table = coverage_table(pa, thresholds_min=[15.0])
    assert table["population_share"].tolist() == pytest.approx([1 / 3])
    assert chinese(rec)[0].startswith("全部 2 个人口单元的 `pop_60plus` 都为 0 或缺失")


def test_a_run_records_its_own_warnings_in_its_language(tmp_path):
    for lang, text in (("zh", "删除了 1 个较小的连通部分"), ("en", "dropped 1 minor component")):
        scen = Scenario(name="t", lang=lang, layers={}).model_copy(update={"base_dir": tmp_path})
        result = RunResult(scenario=scen, crs=UTM)
        with warnings.catch_warnings(record=True) as rec:
            warnings.simplefilter("always")
            result.warn("dropped 1 minor component", "删除了 1 个较小的连通部分")
        assert result.warnings == [text]
        assert chinese(rec) == ["删除了 1 个较小的连通部分"]
