"""Tests of planner.plots: print maps, CJK fonts and the English fallback."""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest
from matplotlib.ft2font import FT2Font
from matplotlib.text import Text
from PIL import Image
from test_maps import EVIL, make_result

from planner import plots
from planner._errors import PlannerWarning
from planner._schema import TIER_LABELS
from planner.pipeline import presenting

NEEDS_CJK = pytest.mark.skipif(plots.cjk_font() is None, reason=(
    f"CJK fonts hidden by {plots.NO_CJK_FONT_ENV}" if os.environ.get(plots.NO_CJK_FONT_ENV)
    else "no CJK font installed (apt-get install fonts-noto-cjk)"))


def _texts(fig) -> list[str]:
    return [t.get_text() for t in fig.findobj(Text) if t.get_text()]


@NEEDS_CJK
def test_chosen_font_has_every_glyph_of_the_labels():
    path = plots.font_path(plots.cjk_font())
    font = FT2Font(path)
    labels = "".join(plots.TEXT["zh"].values()) + "".join(v["zh"] for v in TIER_LABELS.values())
    chars = {c for c in labels if not c.isascii() and not c.isspace()}
    missing = [c for c in chars if font.get_char_index(ord(c)) == 0]
    assert missing == []
    # and a font without CJK glyphs would have been rejected by the same check
    from matplotlib import font_manager

    dejavu = font_manager.findfont("DejaVu Sans")
    assert not plots._has_glyphs(dejavu, "养老")


@NEEDS_CJK
def test_chinese_print_maps_render_without_missing_glyphs(tmp_path):
    r = make_result()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # matplotlib warns "Glyph ... missing" on boxes
        fig = plots.coverage_map(presenting.study_of(r))
        png = plots.save_figure(fig, tmp_path / "c.png")
        svg = plots.save_figure(fig, tmp_path / "c.svg")
    texts = _texts(fig)
    assert "15分钟养老服务圈覆盖" in texts and "北" in texts and "200 m" in texts
    assert {"区县养老院", "服务盲区", "不可达", "≤5分钟"} <= set(texts)
    with Image.open(png) as im:
        assert im.info["dpi"] == pytest.approx((300, 300), abs=0.5)
        assert np.asarray(im.convert("L")).std() > 5
    assert svg.read_text(encoding="utf-8").lstrip().startswith(("<?xml", "<svg"))


def test_no_cjk_font_warns_and_falls_back_to_english(monkeypatch):
    monkeypatch.setattr(plots, "_FONT_CACHE", {"font": None})
    r = make_result()
    with pytest.warns(PlannerWarning, match="apt-get install fonts-noto-cjk"):
        fig = plots.norm_status_map(presenting.study_of(r))
    texts = _texts(fig)
    assert "Norm status by township" in texts and "N" in texts
    assert all(t.isascii() or set(t) <= set("≤–→·©") | set(map(chr, range(128)))
               for t in texts)
    # the Chinese township name is left out rather than drawn as boxes; ASCII names stay,
    # with the number of the (Chinese-titled) rule they fail, listed as "see the report"
    assert not any("新城街道" in t for t in texts) and f"{EVIL}\n(1)" in texts
    assert "Rules failed\n(1) (see the report)" in texts
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fig.canvas.draw()  # no "Glyph missing" warning with the default font


def test_no_cjk_font_env_hides_an_installed_font(monkeypatch):
    monkeypatch.setattr(plots, "_FONT_CACHE", {"font": "Noto Sans CJK SC"})  # as if found
    monkeypatch.setenv(plots.NO_CJK_FONT_ENV, "1")
    assert plots.cjk_font() is None
    with pytest.warns(PlannerWarning, match="No Chinese \\(CJK\\) font found"):
        plots.norm_status_map(presenting.study_of(make_result()))
    monkeypatch.setenv(plots.NO_CJK_FONT_ENV, "0")
    assert plots.cjk_font() == "Noto Sans CJK SC"


def test_font_lookup_skips_fonts_without_glyphs(monkeypatch):
    from matplotlib import font_manager

    dejavu = font_manager.findfont("DejaVu Sans")
    fake = font_manager.FontEntry(fname=dejavu, name="SimHei")
    monkeypatch.setattr(font_manager.fontManager, "ttflist", [fake])
    monkeypatch.setattr(font_manager, "findSystemFonts", lambda fontext="ttf": [])
    assert plots._find_cjk_font() is None


@NEEDS_CJK
def test_font_installed_after_matplotlib_cache_is_found(monkeypatch):
    from matplotlib import font_manager

    path = plots.font_path(plots.cjk_font())
    # matplotlib's cache predates the font: only the system folders know it
    monkeypatch.setattr(font_manager.fontManager, "ttflist", [])
    monkeypatch.setattr(font_manager, "findSystemFonts",
                        lambda fontext="ttf": [path] if fontext == "ttf" else [])
    assert plots._find_cjk_font() == plots.cjk_font()


def test_english_labels_on_request():
    fig = plots.before_after_map(presenting.study_of(make_result()), lang="en")
    texts = _texts(fig)
    assert {"Before", "After", "Proposed sites"} <= set(texts)
    assert "Older residents covered 60.0% → 90.0% · Newly covered: 150" in texts


def test_scale_bar_length_is_a_round_number():
    assert plots._nice_length(4321) == 2000
    assert plots._nice_length(999) == 500
    assert plots._nice_length(100) == 100
    assert plots._nice_length(0) == 0
    fig = plots.coverage_map(presenting.study_of(make_result(lang="en")))
    ax = fig.axes[0]
    # the map is 2 km wide: a fifth is 400 m, so the bar is 200 m, drawn as two 100 m halves
    bars = [p for p in ax.patches if p.get_zorder() == 20]
    assert [round(p.get_width()) for p in bars] == [100, 100]
    assert "200 m" in _texts(fig)


def test_dollar_in_names_is_not_mathtext(tmp_path):
    r = make_result(lang="en")
    r.layers["township_norms"].loc[0, "name"] = "A$x^2$B"
    fig = plots.norm_status_map(presenting.study_of(r))
    assert "A$x^2$B" in _texts(fig)
    plots.save_figure(fig, tmp_path / "n.png")


def test_osm_credit_on_print_maps():
    assert any("OpenStreetMap contributors (ODbL)" in t
               for t in _texts(plots.coverage_map(presenting.study_of(make_result(lang="en", osm=True)))))
    assert not any("OpenStreetMap" in t for t in _texts(plots.coverage_map(presenting.study_of(make_result(lang="en")))))


def test_write_print_maps(tmp_path):
    r = make_result(lang="en", out_dir=tmp_path)
    out = presenting.write_print_maps(r)
    assert list(out) == ["Coverage", "Before and after", "Norm status"]
    names = sorted(p.name for p in (tmp_path / "print_maps").iterdir())
    assert names == ["before_after.png", "before_after.svg", "coverage.png", "coverage.svg",
                     "norm_status.png", "norm_status.svg"]
    r.layers.pop("proposed_sites")
    r.layers.pop("population_access")
    assert list(presenting.write_print_maps(r)) == ["Norm status"]


def test_population_map_without_access_flags_estimates(tmp_path):
    import pandas as pd

    r = make_result(lang="en", out_dir=tmp_path)
    pa = r.layers.pop("population_access")
    r.layers["population"] = pa.drop(columns=["time_min_any", "within_15min"])
    r.tables["demand_columns"] = pd.DataFrame({"layer": ["population"], "column": ["pop_60plus"],
                                               "estimated": [True]})
    fig = plots.population_map(presenting.study_of(r))
    texts = _texts(fig)
    assert "Residents aged 60+ (estimated)" in texts
    # values 50, 100, 150, 200: linear quantiles at 0.2..0.8 are 80, 110, 140, 170, so the
    # units fall in classes 0, 1, 3 and 4 (class 2, 110-140, is empty: not in the legend)
    assert ["50–80", "80–110", "140–170", "170–200"] == [t for t in texts if "–" in t]
    assert list(presenting.write_print_maps(r)) == ["Older residents", "Before and after", "Norm status"]


def _grid_result():
    """A 6 x 6 grid of 100 m streets at 1 m/s, one station at (0, 0), one proposed site."""
    import geopandas as gpd
    import shapely

    from planner import access
    from planner.network import WalkNetwork
    from planner.study import Study

    crs = "EPSG:32649"
    ii, jj = np.meshgrid(np.arange(6), np.arange(6), indexing="ij")
    idx = ii * 6 + jj
    net = WalkNetwork.from_edges(
        (ii * 100.0).ravel(), (jj * 100.0).ravel(),
        np.r_[idx[:-1, :].ravel(), idx[:, :-1].ravel()],
        np.r_[idx[1:, :].ravel(), idx[:, 1:].ravel()], crs=crs, speed_mps=1.0)
    fac = gpd.GeoDataFrame({"id": ["F"], "tier": ["community_station"]},
                           geometry=[shapely.Point(0, 0)], crs=crs)
    # units on the streets: (0, 100) is 100 s from F, (500, 500) 1000 s
    pop = gpd.GeoDataFrame({"id": ["near", "far"], "pop_60plus": [10, 30]},
                           geometry=[shapely.box(-20, 80, 20, 120).boundary.centroid,
                                     shapely.Point(500, 500)], crs=crs)
    snap = access.snap_units(net, pop)
    r = Study(name="t", lang="en", crs=crs)
    r.layers["facilities"] = fac
    r.layers["population_access"] = access.population_access(net, pop, fac,
                                                             snap_population=snap)
    # the proposed site 100 m from "far" along the street x = 500
    r.layers["proposed_sites"] = gpd.GeoDataFrame(
        {"name": ["P"], "tier": ["community_station"], "pop_60plus_newly_covered": [30.0]},
        geometry=[shapely.Point(500, 400)], crs=crs).to_crs(4326)
    # each unit's walk to the proposed site, as planner.locate.propose_sites returns it
    r.time_min_after = access.population_access(
        net, pop, r.layers["proposed_sites"].to_crs(crs), snap_population=snap,
        thresholds_min=())["time_min_any"].to_numpy()
    return r


def test_after_panel_colours_units_by_their_walk_after_the_proposals():
    from matplotlib.colors import to_hex

    r = _grid_result()
    after = plots.after_times(r)
    # hand-computed: near keeps 100 s; far walks 100 s to P instead of 1000 s to F
    np.testing.assert_allclose(r.layers["population_access"]["time_min_any"], [100 / 60, 1000 / 60])
    np.testing.assert_allclose(after["time_min_after"], [100 / 60, 100 / 60])
    fig = plots.before_after_map(r)
    ax0, ax1 = fig.axes[:2]

    def colours(ax):
        return {to_hex(c) for coll in ax.collections for c in coll.get_facecolors()}

    # before: one unit over the 15-minute circle; after: both within 5 minutes
    assert plots.BAND_COLORS["over"] in colours(ax0)
    assert plots.BAND_COLORS["over"] not in colours(ax1)
    assert plots.BAND_COLORS["5"] in colours(ax1)
    assert not any("still coloured" in t for t in _texts(fig))
    # without the times after (layers read back from files) the panel says so
    r.time_min_after = None
    assert plots.after_times(r) is None
    assert any("still coloured by their walk before" in t
               for t in _texts(plots.before_after_map(r)))


# --------------------------------------------------------------------------- plan-ready print maps
def _study(**kw):
    s = presenting.study_of(make_result(**kw))
    s.mapping_unit = "示范区规划设计研究院" if kw.get("lang", "zh") == "zh" else "Demo Institute"
    s.data_sources = ["pop.gpkg", "facilities.csv"]
    return s


@NEEDS_CJK
@pytest.mark.parametrize("maker", ["coverage_map", "before_after_map", "norm_status_map"])
def test_every_print_map_has_its_margin_note_and_township_labels(maker):
    import time

    fig = getattr(plots, maker)(_study())
    texts = _texts(fig)
    note = next(t for t in texts if t.startswith("编制单位："))
    assert note.splitlines() == [
        f"编制单位：示范区规划设计研究院 · 制图日期：{time.strftime('%Y-%m-%d')} · "
        "坐标系：WGS 84 / UTM zone 49N (EPSG:32649)",
        "数据来源：pop.gpkg; facilities.csv"]
    panels = 2 if maker == "before_after_map" else 1
    assert sum(t.split("\n")[0] == "新城街道" for t in texts) == panels
    assert sum(t.split("\n")[0] == EVIL for t in texts) == panels


def test_margin_in_english_names_the_crs_and_osm():
    s = _study(lang="en", osm=True)
    lines = plots.margin_lines(s, "en")
    assert lines[0].startswith("Mapped by: Demo Institute · Date: ")
    assert lines[0].endswith("Coordinate system: WGS 84 / UTM zone 49N (EPSG:32649)")
    assert lines[1] == ("Data: pop.gpkg; facilities.csv; © OpenStreetMap contributors (ODbL)")


@NEEDS_CJK
def test_norm_map_numbers_the_failed_rules_per_township():
    r = make_result()
    fig = plots.norm_status_map(presenting.study_of(r))
    texts = _texts(fig)
    # T2 fails the centre rule: its label carries ①, the panel says what ① is; T1 passes
    assert f"{EVIL}\n①" in texts and "新城街道" in texts
    assert "未达标规则\n① 街镇综合养老服务中心" in texts
    # from the norms step's township layer (sub-units counted): every failed rule is listed
    towns = r.layers["township_norms"]
    towns["norm_status"] = ["fail", "fail"]
    towns["failed_rules"] = ["一社区一站点；每百户社区养老服务用房面积", "一社区一站点"]
    texts = _texts(plots.norm_status_map(presenting.study_of(r)))
    assert "新城街道\n①②" in texts and f"{EVIL}\n①" in texts
    assert "未达标规则\n① 一社区一站点\n② 每百户社区养老服务用房面积" in texts


def test_norm_map_keeps_roads_visible_over_the_fills():
    r = make_result(lang="en")
    fig = plots.norm_status_map(presenting.study_of(r))
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig.set_dpi(300)
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    ax = fig.axes[0]
    img = np.asarray(canvas.buffer_rgba())[..., :3].astype(int)
    # the east-west street crosses the passing township T1 at y = Y0 + 500
    from test_maps import X0, Y0

    x, y = ax.transData.transform((X0 + 250, Y0 + 500))
    row, col = int(round(img.shape[0] - y)), int(round(x))
    window = img[row - 3:row + 4, col - 1:col + 2].reshape(-1, 3)
    darkest = window[window.sum(axis=1).argmin()]
    fill = img[row - 40, col]  # the township's fill, away from the street
    assert darkest.max() - darkest.min() < 30  # grey: the road, not tinted by the fill
    assert darkest.sum() < fill.sum() - 100  # and darker than the fill around it
    assert fill[1] > fill[0]  # the fill is the pass colour (green), light


@NEEDS_CJK
def test_svg_text_stays_text(tmp_path):
    fig = plots.coverage_map(presenting.study_of(make_result()))
    svg = plots.save_figure(fig, tmp_path / "c.svg").read_text(encoding="utf-8")
    assert "15分钟养老服务圈覆盖" in svg and "<text" in svg  # editable, searchable text
    assert 'font-family' in svg or "font:" in svg
