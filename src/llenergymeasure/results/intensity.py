"""Grid carbon intensity by region: CodeCarbon's shipped tables, else llem's own, else the world.

Order (``resolve_intensity``): a value the user gives; the region looked up in the tables
CodeCarbon ships in its wheel when that package is installed (read as files, never imported,
nothing fetched); else in ``data/grid_intensity.csv`` shipped with llem; without a region the
world average, flagged low confidence. A region that no table knows is an error, never a silent
world average.

Region codes: ISO 3166 country codes (``FR`` or ``FRA``), ``US-XX`` (state), ``CA-XX``
(province), ``CN-XX`` (province), ``SE1``-``SE4`` / ``NO1``-``NO5`` (bidding zones), ``WORLD``.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version
from importlib.resources import files
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from llenergymeasure.domain.footprint import (
    INTENSITY_CONFIDENCE,
    CarbonIntensity,
    CarbonSettings,
    user_intensity,
)
from llenergymeasure.errors import ConfigError

WORLD = "WORLD"
LB_PER_MWH_TO_G_PER_KWH = 0.45359237

#: Canadian province codes (ISO 3166-2:CA) to the names CodeCarbon's table uses.
CANADA_PROVINCES = {
    "AB": "alberta",
    "BC": "british columbia",
    "MB": "manitoba",
    "NB": "new brunswick",
    "NL": "newfoundland and labrador",
    "NS": "nova scotia",
    "NT": "northwest territories",
    "NU": "nunavut",
    "ON": "ontario",
    "PE": "prince edward island",
    "QC": "quebec",
    "SK": "saskatchewan",
    "YT": "yukon",
}

#: Fossil sources of CodeCarbon's Canadian mix and their keys in carbon_intensity_per_source.
_CANADA_FOSSIL = {"coal": "coal", "petroleum": "petroleum", "naturalGas": "natural_gas"}

REGION_FORMS = "an ISO 3166 country code (FR, FRA), US-XX, CA-XX, CN-XX, SE1-SE4, NO1-NO5 or WORLD"


@dataclass(frozen=True)
class _Row:
    value_g_per_kwh: float
    year: int | None
    source: str
    name: str | None
    unit: str = "gCO2e/kWh"


def normalise_region(region: str) -> str:
    """Upper-case code with two-letter countries mapped to three letters (``fr`` -> ``FRA``)."""
    code = region.strip().upper().replace("_", "-")
    if len(code) == 2 and code.isalpha():
        return _alpha3().get(code, code)
    return code


@lru_cache(maxsize=1)
def _alpha3() -> dict[str, str]:
    text = files("llenergymeasure").joinpath("data/iso3166.csv").read_text(encoding="utf-8")
    return {row["alpha_2"]: row["alpha_3"] for row in csv.DictReader(text.splitlines())}


# ---- llem's table ---------------------------------------------------------------------------


@lru_cache(maxsize=1)
def llem_table() -> dict[str, _Row]:
    """``data/grid_intensity.csv``: region code -> row (value, year, source)."""
    text = files("llenergymeasure").joinpath("data/grid_intensity.csv").read_text("utf-8")
    return {
        row["region"]: _Row(
            value_g_per_kwh=float(row["intensity_g_per_kwh"]),
            year=int(row["year"]) if row["year"] else None,
            source=f"llem grid_intensity.csv: {row['source']}",
            name=row["name"] or None,
        )
        for row in csv.DictReader(text.splitlines())
    }


# ---- CodeCarbon's shipped data --------------------------------------------------------------


def codecarbon_data_dir() -> Path | None:
    """CodeCarbon's ``data/private_infra`` folder when the package is installed (not imported)."""
    spec = find_spec("codecarbon")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "data" / "private_infra"
    return folder if folder.is_dir() else None


def _codecarbon_version() -> str:
    try:
        return version("codecarbon")
    except PackageNotFoundError:  # pragma: no cover - found on disk but not as a distribution
        return "unknown version"


@lru_cache(maxsize=4)
def _json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _codecarbon_lookup(code: str, folder: Path) -> _Row | None:
    """The region in CodeCarbon's tables, or None when they do not have it."""
    cc = f"CodeCarbon {_codecarbon_version()}"
    if code == WORLD:
        data = _json(folder / "carbon_intensity_per_source.json")
        return _Row(
            float(data["world_average"]),
            2019,
            f"IEA Global Energy & CO2 Status Report 2019 (world_average in {cc} "
            "carbon_intensity_per_source.json)",
            "World average",
        )
    if code.startswith("US-"):
        usa = _json(folder / "2023" / "usa_emissions.json")
        src = usa.get("_source", {})
        for name, row in usa.items():
            if not name.startswith("_") and row.get("regionCode") == code[3:] and name != "usa":
                return _Row(
                    row["emissions"] * LB_PER_MWH_TO_G_PER_KWH,
                    src.get("year"),
                    f"{src.get('name', 'EPA eGRID')} ({src.get('field', '?')}, lb/MWh x "
                    f"0.45359237), {cc} usa_emissions.json",
                    name.title(),
                )
        return None
    if code.startswith("CA-") and code[3:] in CANADA_PROVINCES:
        mix = _json(folder / "2023" / "canada_energy_mix.json").get(CANADA_PROVINCES[code[3:]])
        if mix is None or not mix.get("total"):
            return None
        factors = _json(folder / "carbon_intensity_per_source.json")
        value = sum(mix.get(k, 0.0) / mix["total"] * factors[f] for k, f in _CANADA_FOSSIL.items())
        return _Row(
            value,
            2023,
            f"{cc} canada_energy_mix.json (2023 folder): coal, oil and gas shares x their "
            "factors in carbon_intensity_per_source.json (other sources counted as 0)",
            CANADA_PROVINCES[code[3:]].title(),
        )
    if code.startswith("CN-"):
        china = _json(folder / "2023" / "china_provincial_emissions.json")
        row = china["data"].get(code)
        if row is None:
            return None
        meta = china.get("metadata", {})
        return _Row(
            float(row["emission_factor"]),
            row.get("year", meta.get("year")),
            f"China MEE/NBS provincial electricity emission factors ({meta.get('announcement', '')}"
            f"), {cc} china_provincial_emissions.json; CO2 only, not CO2e",
            row.get("description"),
            unit=row.get("unit", "gCO2/kWh"),
        )
    nordic = _json(folder / "nordic_emissions.json")["data"]
    if code in nordic and code != "FI":
        row = nordic[code]
        return _Row(
            float(row["emission_factor"]),
            row.get("year"),
            f"ENTSO-E Transparency generation per production type, derived in {cc} "
            "nordic_emissions.json",
            row.get("description"),
        )
    mix = _json(folder / "global_energy_mix.json").get(code)
    if mix is None or mix.get("carbon_intensity") is None:
        return None
    return _Row(
        float(mix["carbon_intensity"]),
        mix.get("year"),
        f"{cc} global_energy_mix.json carbon_intensity (per-country electricity mix; the file "
        "states no upstream source)",
        mix.get("country_name"),
    )


# ---- resolution -----------------------------------------------------------------------------


def _from_row(row: _Row, method: str, code: str) -> CarbonIntensity:
    if code == WORLD:
        method = "world_average"
    return CarbonIntensity(
        value_g_per_kwh=row.value_g_per_kwh,
        unit=row.unit,
        method=method,  # type: ignore[arg-type]
        confidence=INTENSITY_CONFIDENCE[method],
        source=row.source,
        year=row.year,
        region=code,
        region_name=row.name,
    )


def lookup_region(region: str) -> CarbonIntensity:
    """The intensity of ``region`` from CodeCarbon's tables, else llem's; ConfigError if none."""
    code = normalise_region(region)
    folder = codecarbon_data_dir()
    if folder is not None:
        try:
            row = _codecarbon_lookup(code, folder)
        except (OSError, ValueError, KeyError, TypeError):
            row = None  # a damaged or re-shaped CodeCarbon file: use llem's table instead
        if row is not None:
            return _from_row(row, "codecarbon_table", code)
    row = llem_table().get(code)
    if row is not None:
        return _from_row(row, "llem_table", code)
    where = "CodeCarbon's tables or llem's" if folder is not None else "llem's table"
    raise ConfigError(
        f"carbon.region: {region!r} is not in {where}; allowed: {REGION_FORMS} "
        "(or give carbon.intensity_g_per_kwh)"
    )


def world_average() -> CarbonIntensity:
    """The world average (low confidence): used when no region or intensity is given."""
    return lookup_region(WORLD)


def resolve_intensity(settings: CarbonSettings) -> CarbonIntensity:
    """User value > region lookup > world average."""
    if settings.intensity_g_per_kwh is not None:
        region = normalise_region(settings.region) if settings.region else None
        return user_intensity(settings.intensity_g_per_kwh, region)
    if settings.region:
        return lookup_region(settings.region)
    return world_average()


def check_region(settings: CarbonSettings) -> None:
    """Raise ConfigError now (before measuring) if the region cannot be looked up."""
    if settings.region and settings.intensity_g_per_kwh is None:
        lookup_region(settings.region)
