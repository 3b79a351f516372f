"""The build report of a network as a table for planners (Chinese or English labels)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import pandas as pd

    from planner.network.graph import WalkNetwork

__all__ = ["report_table"]

_LABELS = {
    "source": ("数据来源", "source"),
    "n_lines_in": ("输入道路线数", "road lines read"),
    "n_lines_used": ("参与建网的道路线数", "road lines used"),
    "n_ways_in": ("读入的OSM道路（条）", "OSM street ways read"),
    "ways_clipped": ("被数据范围裁切的道路（条，保留范围内片段）",
                     "ways cut at the extract's edge (pieces inside kept)"),
    "clip_pieces": ("裁切道路保留的片段数", "pieces kept of cut ways"),
    "ways_clipped_dropped": ("裁切后不足两个节点而删除的道路（条）",
                             "cut ways dropped (under two nodes inside)"),
    "excluded_classes": ("排除的道路等级（道路线条数）", "excluded road classes (lines)"),
    "excluded_ways": ("排除的道路等级（OSM道路条数）", "excluded road classes (OSM ways)"),
    "excluded_segments": ("排除的道路等级（OSM节点间路段数）",
                          "excluded road classes (segments between OSM nodes)"),
    "excluded_edges": ("排除的道路等级（路网路段数）", "excluded road classes (network edges)"),
    "excluded_km": ("排除道路长度（km）", "excluded road length (km)"),
    "steps_avoided": ("避开的台阶（道路线条数）", "steps avoided (lines)"),
    "steps_avoided_ways": ("避开的台阶（OSM道路条数）", "steps avoided (OSM ways)"),
    "steps_avoided_edges": ("避开的台阶（路网路段数）", "steps avoided (network edges)"),
    "crossings": ("无共享节点的交叉处", "crossings without a shared vertex"),
    "crossings_grade_separated": ("立体交叉（不连通）", "grade-separated crossings (not joined)"),
    "crossings_at_grade": ("平面交叉（已打断连接）", "at-grade crossings (noded)"),
    "shared_vertex_junctions": ("共享节点路口", "junctions at shared vertices"),
    "shared_vertices_other_level": ("不同层共享节点（未连接）", "shared vertices on other levels"),
    "near_miss_joins": ("近距离断头连接数", "near-miss joins"),
    "near_miss_max_gap_m": ("最大连接间隙（m）", "largest joined gap (m)"),
    "join_tolerance_m": ("连接容差（m）", "join tolerance (m)"),
    "n_components": ("连通分量数", "connected components"),
    "largest_component_share": ("最大连通分量节点占比", "largest component share of nodes"),
    "components_dropped": ("删除的小连通分量", "components dropped"),
    "nodes_dropped": ("删除的节点", "nodes dropped"),
    "km_dropped": ("删除的道路长度（km）", "road length dropped (km)"),
    "n_nodes": ("节点数", "nodes"),
    "n_edges": ("路网路段数", "network edges"),
    "degenerate_lines": ("退化线（少于两个不同点）", "degenerate lines (under two points)"),
    "pass_through_nodes_merged": ("合并的非路口节点", "pass-through nodes merged"),
    "edges_dropped": ("删除的路网路段", "network edges dropped"),
    "excluded_no_foot_access": ("禁止步行的OSM道路（条）", "OSM ways closed to pedestrians"),
    "non_highway_ways": ("非道路OSM线要素（条）", "non-road OSM ways"),
    "slope_penalty": ("坡度修正（Tobler）", "slope penalty (Tobler)"),
    "path": ("文件", "file"),
    "place": ("地名", "place"),
    "bbox": ("范围", "bounding box"),
    "total_km": ("步行网络总长（km）", "walk network length (km)"),
    "profile": ("步行人群", "walking profile"),
    "speed_mps": ("步行速度（m/s）", "walking speed (m/s)"),
    "crossing_delay_s": ("过街延误（s）", "crossing delay (s)"),
    "major_crossing_nodes": ("主次干路过街路口数", "major-road crossing junctions"),
}


def report_table(net: WalkNetwork, *, lang: Literal["zh", "en"] = "zh") -> pd.DataFrame:
    """The build report as a small table (``key``, ``item``, ``value``) for planners.

    Parameters
    ----------
    net
        A built network.
    lang
        ``"zh"`` (default) or ``"en"`` for the ``item`` labels.
    """
    import pandas as pd

    col = 0 if lang == "zh" else 1
    rows = []
    for key, value in net.report.items():
        if key == "component_sizes":
            value = ", ".join(map(str, value[:10])) + (" …" if len(value) > 10 else "")
        elif isinstance(value, dict):
            value = ", ".join(f"{k}: {v}" for k, v in value.items())
        elif isinstance(value, float):
            value = round(value, 4)
        label = _LABELS.get(key, (key, key))[col]
        if key == "component_sizes":
            label = "连通分量规模（前10）" if col == 0 else "component sizes (top 10)"
        rows.append({"key": key, "item": label, "value": "" if value is None else str(value)})
    return pd.DataFrame(rows, columns=["key", "item", "value"])
