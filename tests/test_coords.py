"""WGS-84 / GCJ-02 / BD-09 conversions against published test vectors, and round trips."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely

from planner import coords
from planner._errors import LayerError

# eviltransform's test vectors (github.com/googollee/eviltransform, python/test.py):
# (wgs_lon, wgs_lat, gcj_lon, gcj_lat)
EVIL = [
    (121.5272106, 31.1774276, 121.531541859215, 31.17530398364597),  # Shanghai
    (113.912316, 22.543847, 113.9171764808363, 22.540796131694766),  # Shenzhen
    (116.377817, 39.911954, 116.38404722455657, 39.91334545536069),  # Beijing
]


def metres(lon1, lat1, lon2, lat2):
    """Equirectangular distance in metres (exact enough below a kilometre)."""
    k = 111_320.0
    dx = (np.asarray(lon1) - lon2) * k * np.cos(np.radians(lat2))
    dy = (np.asarray(lat1) - lat2) * k
    return np.hypot(dx, dy)


@pytest.mark.parametrize(("wlon", "wlat", "glon", "glat"), EVIL)
def test_wgs84_to_gcj02_published_vectors(wlon, wlat, glon, glat):
    lon, lat = coords.wgs84_to_gcj02(wlon, wlat)
    assert lon == pytest.approx(glon, abs=1e-9)
    assert lat == pytest.approx(glat, abs=1e-9)


@pytest.mark.parametrize(("wlon", "wlat", "glon", "glat"), EVIL)
def test_gcj02_to_wgs84_recovers_published_wgs(wlon, wlat, glon, glat):
    lon, lat = coords.gcj02_to_wgs84(glon, glat)
    assert metres(lon, lat, wlon, wlat) < 0.01


def test_coordtransform_vectors():
    # wandergis/coordtransform README values (Beijing, 116.404, 39.915)
    assert coords.wgs84_to_gcj02(116.404, 39.915) == pytest.approx(
        (116.41024449916938, 39.91640428150164), abs=1e-12)
    assert coords.gcj02_to_bd09(116.404, 39.915) == pytest.approx(
        (116.41036949371029, 39.92133699351021), abs=1e-12)
    # coordtransform's BD-09 inverse is the one-step approximation (116.39762729119315,
    # 39.90865673957631); ours is exact: within a metre of it, and exact under the forward map.
    glon, glat = coords.bd09_to_gcj02(116.404, 39.915)
    assert metres(glon, glat, 116.39762729119315, 39.90865673957631) < 1.0
    back = coords.gcj02_to_bd09(glon, glat)
    assert back == pytest.approx((116.404, 39.915), abs=1e-9)
    # the one-step GCJ inverse (116.39775550083061, 39.91359571849836) is off by ~0.6 m
    wlon, wlat = coords.gcj02_to_wgs84(116.404, 39.915)
    assert metres(wlon, wlat, 116.39775550083061, 39.91359571849836) < 1.0
    assert coords.wgs84_to_gcj02(wlon, wlat) == pytest.approx((116.404, 39.915), abs=1e-9)


@pytest.fixture(scope="module")
def china_grid():
    lon, lat = np.meshgrid(np.linspace(74.0, 134.5, 61), np.linspace(4.0, 53.0, 50))
    keep = coords.in_china(lon, lat)
    return lon[keep], lat[keep]


@pytest.mark.parametrize(("fwd", "inv"), [
    (coords.wgs84_to_gcj02, coords.gcj02_to_wgs84),
    (coords.gcj02_to_bd09, coords.bd09_to_gcj02),
    (coords.wgs84_to_bd09, coords.bd09_to_wgs84),
])
def test_round_trip_better_than_10_cm_over_china(china_grid, fwd, inv):
    lon, lat = china_grid
    assert lon.size > 2000
    flon, flat = fwd(lon, lat)
    assert metres(flon, flat, lon, lat).min() > 1.0  # the transforms do move points
    blon, blat = inv(flon, flat)
    err = metres(blon, blat, lon, lat)
    assert err.max() < 0.1


def test_shift_in_xian_is_about_465_m():
    # README of the Xi'an data: GCJ-02 sits about 465 m off WGS-84 there.  The
    # algorithm moves points mostly east (+430 m) and a little south (-175 m).
    glon, glat = coords.wgs84_to_gcj02(108.95, 34.26)
    assert 450 < metres(glon, glat, 108.95, 34.26) < 480
    assert metres(glon, 34.26, 108.95, 34.26) == pytest.approx(430, abs=10)
    assert (34.26 - glat) * 111_320 == pytest.approx(175, abs=10)


def test_outside_china_is_identity_and_shapes_are_kept():
    lon = np.array([[2.35, 121.5], [-74.0, 108.9]])
    lat = np.array([[48.85, 31.2], [40.7, 34.2]])
    glon, glat = coords.wgs84_to_gcj02(lon, lat)
    assert glon.shape == (2, 2)
    assert glon[0, 0] == 2.35 and glat[1, 0] == 40.7  # Paris, New York unchanged
    assert glon[0, 1] != 121.5
    back = coords.gcj02_to_wgs84(glon, glat)
    np.testing.assert_allclose(back[0], lon, atol=1e-8)
    x, y = coords.wgs84_to_gcj02(2.35, 48.85)
    assert np.ndim(x) == 0 and float(x) == 2.35 and float(y) == 48.85


def test_convert_dispatches_and_rejects_unknown_systems():
    lon, lat = coords.convert(108.95, 34.26, src="wgs84", dst="bd09")
    assert (lon, lat) == coords.wgs84_to_bd09(108.95, 34.26)
    assert coords.convert(1.0, 2.0, src="gcj02", dst="gcj02") == (1.0, 2.0)
    assert coords.convert(108.95, 34.26, src="amap", dst="wgs84") == coords.gcj02_to_wgs84(
        108.95, 34.26)
    with pytest.raises(LayerError, match=r"Unknown coordinate system src='utm'.*gcj02"):
        coords.convert(1.0, 2.0, src="utm", dst="wgs84")
    with pytest.raises(ValueError, match="same shape"):
        coords.wgs84_to_gcj02([1.0, 2.0], [1.0])


def test_to_wgs84_converts_every_vertex():
    ring = [(108.94, 34.25), (108.96, 34.25), (108.96, 34.27), (108.94, 34.25)]
    hole = [(108.95, 34.255), (108.955, 34.255), (108.955, 34.26), (108.95, 34.255)]
    poly = shapely.Polygon(ring, [hole])
    out = coords.to_wgs84(poly, coord_system="gcj02")
    xy = shapely.get_coordinates(poly)
    ex, ey = coords.gcj02_to_wgs84(xy[:, 0], xy[:, 1])
    np.testing.assert_allclose(shapely.get_coordinates(out), np.column_stack([ex, ey]), atol=1e-12)
    assert len(out.interiors) == 1

    gdf = gpd.GeoDataFrame({"名称": ["甲", "乙"]}, index=[10, 20],
                           geometry=[shapely.Point(108.95, 34.26), poly], crs="EPSG:4326")
    conv = coords.to_wgs84(gdf, coord_system="bd09")
    assert list(conv.index) == [10, 20] and list(conv["名称"]) == ["甲", "乙"]
    bx, by = coords.bd09_to_wgs84(108.95, 34.26)
    assert conv.geometry.iloc[0].x == pytest.approx(float(bx), abs=1e-12)
    assert gdf.geometry.iloc[0].x == 108.95  # input untouched

    with pytest.raises(LayerError, match="projected CRS EPSG:32649"):
        coords.to_wgs84(gdf.to_crs(32649), coord_system="gcj02")


@pytest.mark.parametrize(("lon", "lat", "epsg"), [
    (108.95, 34.26, 32649),  # Xi'an
    (116.40, 39.90, 32650),  # Beijing
    (87.62, 43.83, 32645),  # Urumqi
    (121.47, 31.23, 32651),  # Shanghai
    (151.2, -33.87, 32756),  # Sydney (south)
])
def test_metric_crs_is_the_utm_zone(lon, lat, epsg):
    crs = coords.metric_crs(np.array([lon - 0.1, lon + 0.1]), np.array([lat, lat + 0.1]))
    assert crs.to_epsg() == epsg
    assert not crs.is_geographic


def test_metric_crs_refuses_projected_numbers():
    with pytest.raises(LayerError, match="not longitude/latitude degrees"):
        coords.metric_crs([500000.0], [3790000.0])
