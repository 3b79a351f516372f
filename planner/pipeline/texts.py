"""What a run says about its steps, in the scenario's language.

Steps return their skip reasons in English (``run.json`` keeps them as
written, for scripts); the report, the command line and the notebook view
show them through `step_text` in the run's language.  A reason this table
does not know (an error message, a library's reason) is shown as it is.
"""

from __future__ import annotations

__all__ = ["BAR_LABELS", "REASONS", "STEP_NAMES", "STEP_STATUS", "reason_text", "step_line",
           "step_rows", "step_text"]

#: Step names as a reader sees them.
STEP_NAMES: dict[str, dict[str, str]] = {
    "zh": {"layers": "读取图层", "demand": "需求估算", "network": "步行路网",
           "checks": "数据核查", "access": "可达性分析", "norms": "规范核查", "locate": "设施选址",
           "outputs": "图层与表格", "maps": "网页地图", "report": "报告"},
    "en": {"layers": "Layers", "demand": "Demand", "network": "Walk network",
           "checks": "Data checks", "access": "Access", "norms": "Norm checks", "locate": "Site selection",
           "outputs": "Layers and tables", "maps": "Web map", "report": "Report"},
}

STEP_STATUS: dict[str, dict[str, str]] = {
    "zh": {"done": "完成", "skipped": "跳过", "failed": "失败", "running": "进行中",
           "interrupted": "已中断"},
    "en": {"done": "done", "skipped": "skipped", "failed": "failed", "running": "running",
           "interrupted": "interrupted"},
}

#: The steps' skip reasons (as returned in English) in Chinese.
REASONS: dict[str, str] = {
    "not requested": "未要求运行",
    "no census table and demand.use_for_population is false":
        "没有普查表，且 demand.use_for_population 为 false",
    "no facility left in the analysis (see the warnings of the checks step)":
        "分析中没有剩余设施（见数据核查步骤的提示）",
    "no layers": "没有图层",
    "no `demand:` section in the scenario": "方案中没有 `demand:` 部分",
    "no census table (demand.census)": "没有普查表（demand.census）",
    "no population layer and demand.use_for_population is false":
        "没有人口图层，且 demand.use_for_population 为 false",
    "no `network:` section in the scenario": "方案中没有 `network:` 部分",
    "no walk network (the network step did not build one)": "没有步行路网（路网步骤未生成）",
    "no facilities layer": "没有设施图层",
    "no population layer": "没有人口图层",
    "no `norms:` section in the scenario": "方案中没有 `norms:` 部分",
    "needs a population or facilities layer": "需要人口图层或设施图层",
    "no `locate:` section in the scenario": "方案中没有 `locate:` 部分",
    "no output folder (pass out_dir= or set `output:` in the scenario)":
        "未指定输出文件夹（传入 out_dir=，或在方案中设置 `output:`）",
    "nothing to write (no layers or tables, or gpkg/csv switched off)":
        "没有可写出的内容（无图层或表格，或 gpkg/csv 已关闭）",
    "outputs.map is false": "outputs.map 为 false",
    "no layers to draw": "没有可绘制的图层",
    "outputs.report, outputs.excel, outputs.docx and outputs.print_maps are all false":
        "outputs.report、outputs.excel、outputs.docx 和 outputs.print_maps 均为 false",
    "no tier set under `locate:` (township_centre / community_station)":
        "`locate:` 下未设置设施层级（township_centre / community_station）",
    "no candidate sites (add a `candidates` layer or set generate_candidates)":
        "没有候选地块（添加 `candidates` 图层，或设置 generate_candidates）",
}


def reason_text(reason: str, lang: str) -> str:
    """A step's reason in ``lang`` (as it is when unknown or English is asked)."""
    if lang != "zh" or not reason:
        return reason
    return REASONS.get(reason, reason)


def step_text(name: str, status: str, reason: str, lang: str) -> tuple[str, str, str]:
    """(name, status, reason) of a step as shown in ``lang``."""
    names = STEP_NAMES.get(lang, STEP_NAMES["en"])
    stat = STEP_STATUS.get(lang, STEP_STATUS["en"])
    return names.get(name, name), stat.get(status, status), reason_text(reason, lang)


def step_rows(steps: list, lang: str) -> list[tuple[str, str, str, str]]:
    """(name, status, seconds text, reason) rows of `StepRecord`s in ``lang``."""
    out = []
    for s in steps:
        name, status, reason = step_text(s.name, s.status, s.reason, lang)
        out.append((name, status, f"{s.seconds:.2f}", reason))
    return out


#: Labels of the progress bars of long steps.
BAR_LABELS: dict[str, dict[str, str]] = {
    "zh": {"service_areas": "步行服务范围", "report": "写出报告", "locate": "设施选址"},
    "en": {"service_areas": "service areas", "report": "writing the report",
           "locate": "site selection"},
}

_SECONDS = {"zh": "秒", "en": "s"}
_MARK = {"done": "✓", "skipped": "–", "failed": "✗"}


def step_line(record, lang: str) -> str:
    """The line printed when a step ends: mark, name, status, time and reason."""
    name, status, reason = step_text(record.name, record.status, record.reason, lang)
    width = sum(2 if ord(ch) > 0x2E80 else 1 for ch in name)
    pad = " " * max(0, 12 - width)
    note = f"  ({reason})" if reason else ""
    return (f"  {_MARK.get(record.status, '·')} {name}{pad} {status} "
            f"{record.seconds:6.2f} {_SECONDS.get(lang, 's')}{note}")
