"""Canonical column names and the facility-tier vocabulary, shared by every module.

Users' files carry Chinese or English column names; `planner.layers` maps
them onto these canonical names (``SYNONYMS``), and every other module only
ever sees the canonical ones.
"""

from __future__ import annotations

from typing import Literal

# ---------------------------------------------------------------- canonical columns
#: Canonical columns per layer kind, with their meaning and unit.
COLUMNS: dict[str, dict[str, str]] = {
    "population": {
        "id": "unique id of the community / compound",
        "name": "name",
        "population": "resident population (persons)",
        "pop_60plus": "residents aged 60 and over (persons)",
        "pop_65plus": "residents aged 65 and over (persons)",
        "pop_80plus": "residents aged 80 and over (persons)",
        "households": "households",
        "township": "township / subdistrict name (街道/乡镇)",
        "district": "district / county name (区县)",
    },
    "facilities": {
        "id": "unique id of the facility",
        "name": "name",
        "tier": "one of TIERS",
        "beds": "beds (all kinds)",
        "nursing_beds": "nursing-type beds (护理型床位)",
        "floor_area_m2": "building floor area, m²",
        "land_area_m2": "land area, m²",
        "public": "publicly owned or run (公办), true/false",
        "social_workers": "social workers employed",
        "township": "township / subdistrict name",
        "district": "district name",
        "community": "community name the facility serves",
    },
    "boundaries": {
        "id": "unique id (e.g. adcode)",
        "name": "name of the township/subdistrict or district",
        "district": "district name (for township boundaries)",
        "population": "resident population (persons)",
        "pop_60plus": "residents aged 60 and over",
        "households": "households",
    },
    "candidates": {
        "id": "unique id of the candidate site",
        "name": "name",
        "tier": "which tier the site may host (one of TIERS, or empty for any)",
        "capacity": "capacity (beds or persons served)",
        "land_area_m2": "land area, m²",
    },
}

#: Numeric columns that must be non-negative numbers.
COUNT_COLUMNS = (
    "population", "pop_60plus", "pop_65plus", "pop_80plus", "households", "beds",
    "nursing_beds", "floor_area_m2", "land_area_m2", "social_workers", "capacity",
)

#: Unit suffixes a column name may carry (``常住人口（人）``); removed before matching.
#: Only "persons": a column in 万人 (10,000 persons) must not be read as persons.
UNIT_SUFFIXES: tuple[str, ...] = ("(人)", "（人）", "(persons)", "(person)", "_persons")

#: Synonyms not applied to road line layers: there ``street`` is a street name.
NOT_FOR_LINES: frozenset[str] = frozenset({"street"})

#: User column names (lower-cased for English) → canonical names.
SYNONYMS: dict[str, str] = {
    # ids and names
    "id": "id", "编号": "id", "代码": "id", "编码": "id", "区划代码": "id", "adcode": "id", "fid": "id",
    "name": "name", "名称": "name", "名字": "name", "社区名称": "name", "小区名称": "name",
    "机构名称": "name", "设施名称": "name", "站点名称": "name", "街道名称": "name", "地区": "name",
    # population
    "population": "population", "pop": "population", "常住人口": "population", "人口": "population",
    "总人口": "population", "人口数": "population", "户籍人口": "population", "合计": "population",
    "人口数_合计": "population", "population_total": "population", "total_population": "population",
    "pop_total": "population", "total_pop": "population", "residents": "population",
    "常住人口数": "population", "总人口数": "population", "人口总数": "population",
    "常住总人口": "population", "常住人口总数": "population", "人口合计": "population",
    "pop_60plus": "pop_60plus", "60岁及以上人口": "pop_60plus", "60岁以上人口": "pop_60plus",
    "老年人口": "pop_60plus", "老年人": "pop_60plus", "60岁及以上": "pop_60plus",
    "pop_65plus": "pop_65plus", "65岁及以上人口": "pop_65plus", "65岁以上人口": "pop_65plus",
    "pop_80plus": "pop_80plus", "80岁及以上人口": "pop_80plus", "80岁以上人口": "pop_80plus",
    "households": "households", "户数": "households", "家庭户数": "households", "总户数": "households",
    "家庭户户数": "households",
    # facilities
    "tier": "tier", "类型": "tier", "等级": "tier", "设施类型": "tier", "机构类型": "tier", "层级": "tier",
    "beds": "beds", "床位数": "beds", "床位": "beds", "床位数(张)": "beds", "床位数（张）": "beds",
    "nursing_beds": "nursing_beds", "护理型床位数": "nursing_beds", "护理型床位": "nursing_beds",
    "floor_area_m2": "floor_area_m2", "建筑面积": "floor_area_m2", "建筑面积(m2)": "floor_area_m2",
    "建筑面积（平方米）": "floor_area_m2", "建筑面积(平方米)": "floor_area_m2",
    "land_area_m2": "land_area_m2", "用地面积": "land_area_m2", "占地面积": "land_area_m2",
    "用地面积(m2)": "land_area_m2", "用地面积（平方米）": "land_area_m2",
    "public": "public", "公办": "public", "是否公办": "public",
    "social_workers": "social_workers", "社会工作者": "social_workers", "社工人数": "social_workers",
    "capacity": "capacity", "容量": "capacity", "服务能力": "capacity",
    # places
    "township": "township", "街道": "township", "乡镇": "township", "镇街": "township",
    "所属街道": "township", "街道/乡镇": "township", "乡镇/街道": "township",
    "街镇": "township", "所属街镇": "township", "所属乡镇": "township", "街道办": "township",
    "街道办事处": "township", "subdistrict": "township", "sub_district": "township",
    "sub-district": "township", "street": "township", "jiedao": "township", "town": "township",
    "district": "district", "区县": "district", "区": "district", "所属区县": "district",
    "community": "community", "社区": "community", "所属社区": "community",
    # coordinates
    "lon": "lon", "lng": "lon", "longitude": "lon", "经度": "lon", "x": "lon",
    "lat": "lat", "latitude": "lat", "纬度": "lat", "y": "lat",
}

# ---------------------------------------------------------------- facility tiers
Tier = Literal["district_home", "township_centre", "community_station", "rural_point", "other"]

#: The tier vocabulary, in order of the three-tier network (plus rural points and other).
TIERS: tuple[str, ...] = ("district_home", "township_centre", "community_station", "rural_point", "other")

#: Display names per tier and language.
TIER_LABELS: dict[str, dict[str, str]] = {
    "district_home": {"zh": "区县养老院", "en": "District nursing home"},
    "township_centre": {"zh": "街镇综合养老服务中心", "en": "Township/subdistrict centre"},
    "community_station": {"zh": "社区养老服务站", "en": "Community station"},
    "rural_point": {"zh": "农村互助幸福院", "en": "Rural mutual-aid point"},
    "other": {"zh": "其他养老设施", "en": "Other facility"},
}

#: What users write (Chinese or English) → tier.  Matched after stripping spaces;
#: lower-cased for English.  `planner.layers.normalize_tier` also tries substrings.
TIER_SYNONYMS: dict[str, str] = {
    "district_home": "district_home", "district nursing home": "district_home",
    "nursing home": "district_home", "养老院": "district_home", "敬老院": "district_home",
    "区县养老院": "district_home", "公办养老院": "district_home", "示范性养老院": "district_home",
    "特困人员供养服务机构": "district_home", "特困供养服务机构": "district_home",
    "养老机构": "district_home", "福利院": "district_home", "社会福利院": "district_home",
    "护理院": "district_home", "区县级": "district_home", "区级": "district_home", "县级": "district_home",
    "township_centre": "township_centre", "township centre": "township_centre",
    "township center": "township_centre", "subdistrict centre": "township_centre",
    "综合养老服务中心": "township_centre", "街道综合养老服务中心": "township_centre",
    "镇街综合养老服务中心": "township_centre", "区域养老服务中心": "township_centre",
    "区域性养老服务中心": "township_centre", "乡镇养老服务中心": "township_centre",
    "街镇级": "township_centre", "街道级": "township_centre", "乡镇级": "township_centre",
    "community_station": "community_station", "community station": "community_station",
    "社区养老服务站": "community_station", "养老服务站": "community_station",
    "日间照料中心": "community_station", "社区日间照料中心": "community_station",
    "社区养老服务驿站": "community_station", "养老驿站": "community_station",
    "居家养老服务站": "community_station", "社区级": "community_station",
    "rural_point": "rural_point", "rural mutual-aid point": "rural_point",
    "互助幸福院": "rural_point", "农村互助幸福院": "rural_point", "幸福院": "rural_point",
    "农村幸福院": "rural_point", "村级": "rural_point",
    "other": "other", "其他": "other",
}
