"""The options every network builder takes, defined once.

`NetworkOptions` holds them (and documents them); `NetworkOptionFields` is
the same set as a `TypedDict`, the type of the builders' ``**overrides``;
`resolve_options` merges an options object with keyword overrides.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any, TypedDict

from planner.defaults import MIN_COMPONENT_SHARE

__all__ = ["OPTION_NAMES", "NetworkOptionFields", "NetworkOptions", "resolve_options"]


@dataclass(frozen=True)
class NetworkOptions:
    """How a walk network is built: walking profile, walkable roads, components, CRS.

    Every builder (`from_lines`, `from_osm_file`, `from_osmnx_graph`,
    `download_osm`, `from_graphml`) takes one as ``options=`` and accepts
    each field as a keyword too (``from_lines(roads, profile="frail")``);
    keywords override the fields of ``options``.

    Parameters
    ----------
    speed_mps
        Walking speed in m/s; default (None) the profile's.
    profile
        A key of `PROFILES` (default ``older_adult``, 1.0 m/s); None walks
        1.0 m/s without avoiding steps.
    exclude_classes
        Road classes not walked; replaces `DEFAULT_EXCLUDE` (motorway,
        motorway_link, trunk, trunk_link).
    include_classes
        If given, exactly these classes are walked (minus ``exclude_classes``).
    avoid_steps
        Drop ``steps``; default (None) the profile's (True for frail and wheelchair).
    min_component_share
        Connected components with fewer nodes than this share of all nodes
        are dropped (0 keeps all; the largest is always kept).
    crs
        The metric CRS of the result (anything `pyproj.CRS.from_user_input`
        takes); default the layer's own if projected, else the local UTM zone.
    crossing_delay_s
        Seconds to cross a major road (primary/secondary/trunk and links):
        half of it is added at each end of a minor edge that meets a major
        road at a junction, so a walk across the major road pays it once.
        `from_graphml` reads None as "keep the saved network's delays".

    Examples
    --------
    >>> opts = NetworkOptions(profile="frail", min_component_share=0.0)
    >>> opts.replace(speed_mps=0.7).speed_mps
    0.7
    """

    speed_mps: float | None = None
    profile: str | None = "older_adult"
    exclude_classes: list[str] | tuple[str, ...] | None = None
    include_classes: list[str] | tuple[str, ...] | None = None
    avoid_steps: bool | None = None
    min_component_share: float = MIN_COMPONENT_SHARE
    crs: Any = None
    crossing_delay_s: float | None = 0.0

    def replace(self, **changes: Any) -> NetworkOptions:
        """A copy with some fields changed (`dataclasses.replace`)."""
        return replace(self, **changes)


class NetworkOptionFields(TypedDict, total=False):
    """The fields of `NetworkOptions` as keyword arguments (see there)."""

    speed_mps: float | None
    profile: str | None
    exclude_classes: list[str] | tuple[str, ...] | None
    include_classes: list[str] | tuple[str, ...] | None
    avoid_steps: bool | None
    min_component_share: float
    crs: Any
    crossing_delay_s: float | None


#: The option names, in the order of `NetworkOptions`.
OPTION_NAMES: tuple[str, ...] = tuple(f.name for f in fields(NetworkOptions))

_DEFAULTS = NetworkOptions()


def resolve_options(
    options: NetworkOptions | None,
    overrides: Mapping[str, Any],
    defaults: NetworkOptions = _DEFAULTS,
    *,
    caller: str = "the network builder",
) -> NetworkOptions:
    """``options`` (or ``defaults`` when None) with the keyword ``overrides`` applied.

    Raises
    ------
    TypeError
        When ``overrides`` holds a name that is no field of `NetworkOptions`,
        or ``options`` is not a `NetworkOptions`.
    """
    unknown = [k for k in overrides if k not in OPTION_NAMES]
    if unknown:
        what = ("an unexpected keyword argument" if len(unknown) == 1
                else "unexpected keyword arguments")
        raise TypeError(
            f"{caller}() got {what} {', '.join(repr(k) for k in unknown)}. The network "
            f"options are: {', '.join(OPTION_NAMES)} (see NetworkOptions)."
        )
    if options is None:
        options = defaults
    elif not isinstance(options, NetworkOptions):
        raise TypeError(
            f"{caller}() needs options=NetworkOptions(...), got {type(options).__name__}."
        )
    return replace(options, **overrides) if overrides else options
