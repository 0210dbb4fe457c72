"""Rebuild llem's own grid-intensity tables from the data CodeCarbon ships in its wheel.

    python docs/grid_table.py   # needs codecarbon and pycountry installed; no network

Writes src/llenergymeasure/data/grid_intensity.csv (used when CodeCarbon is not installed)
and src/llenergymeasure/data/iso3166.csv (two-letter to three-letter country codes). Every row
of the intensity table names the file, CodeCarbon version and year it was taken from; the
values are CodeCarbon's, converted to gCO2e/kWh where the file uses another unit.
"""

from __future__ import annotations

import csv
import json
from importlib.metadata import version
from pathlib import Path

DATA = Path(__file__).resolve().parents[1] / "src" / "llenergymeasure" / "data"

#: Countries kept in llem's small table (where ML hardware commonly runs), ISO alpha-3.
COUNTRIES = [
    "ARG",
    "AUS",
    "AUT",
    "BEL",
    "BRA",
    "CAN",
    "CHE",
    "CHL",
    "CHN",
    "CZE",
    "DEU",
    "DNK",
    "ESP",
    "EST",
    "FIN",
    "FRA",
    "GBR",
    "GRC",
    "HKG",
    "IDN",
    "IND",
    "IRL",
    "ISL",
    "ISR",
    "ITA",
    "JPN",
    "KOR",
    "MEX",
    "MYS",
    "NLD",
    "NOR",
    "NZL",
    "POL",
    "PRT",
    "QAT",
    "ROU",
    "SAU",
    "SGP",
    "SWE",
    "THA",
    "TUR",
    "TWN",
    "UKR",
    "USA",
    "ZAF",
    "ARE",
    "VNM",
]

LB_PER_MWH_TO_G_PER_KWH = 0.45359237


def main() -> None:
    import codecarbon
    import pycountry

    cc_version = version("codecarbon")
    root = Path(codecarbon.__file__).parent / "data" / "private_infra"
    rows: list[dict[str, object]] = []
    per_source = json.loads((root / "carbon_intensity_per_source.json").read_text())
    rows.append(
        {
            "region": "WORLD",
            "name": "World average",
            "intensity_g_per_kwh": per_source["world_average"],
            "year": 2019,
            "source": "IEA Global Energy & CO2 Status Report 2019 (world_average in CodeCarbon "
            f"{cc_version} carbon_intensity_per_source.json)",
        }
    )
    mix = json.loads((root / "global_energy_mix.json").read_text())
    for code in COUNTRIES:
        row = mix[code]
        rows.append(
            {
                "region": code,
                "name": row["country_name"],
                "intensity_g_per_kwh": row["carbon_intensity"],
                "year": row["year"],
                "source": f"CodeCarbon {cc_version} global_energy_mix.json carbon_intensity "
                "(per-country electricity mix; the file states no upstream source)",
            }
        )
    usa = json.loads((root / "2023" / "usa_emissions.json").read_text())
    egrid = usa["_source"]
    for name, row in usa.items():
        if name.startswith("_") or name == "usa":
            continue
        rows.append(
            {
                "region": f"US-{row['regionCode']}",
                "name": name.title(),
                "intensity_g_per_kwh": round(row["emissions"] * LB_PER_MWH_TO_G_PER_KWH, 3),
                "year": egrid["year"],
                "source": f"{egrid['name']} ({egrid['field']}, lb/MWh x 0.45359237), via "
                f"CodeCarbon {cc_version} usa_emissions.json",
            }
        )
    nordic = json.loads((root / "nordic_emissions.json").read_text())["data"]
    for zone, row in nordic.items():
        if zone == "FI":
            continue  # FI is Finland as a whole: the country row covers it
        rows.append(
            {
                "region": zone,
                "name": row["description"],
                "intensity_g_per_kwh": row["emission_factor"],
                "year": row["year"],
                "source": "ENTSO-E Transparency generation per production type, as derived in "
                f"CodeCarbon {cc_version} nordic_emissions.json",
            }
        )
    with (DATA / "grid_intensity.csv").open("w", newline="") as out:
        writer = csv.DictWriter(
            out, ["region", "name", "intensity_g_per_kwh", "year", "source"], lineterminator="\n"
        )
        writer.writeheader()
        writer.writerows(rows)
    with (DATA / "iso3166.csv").open("w", newline="") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["alpha_2", "alpha_3", "name"])
        for country in sorted(pycountry.countries, key=lambda c: c.alpha_2):
            writer.writerow([country.alpha_2, country.alpha_3, country.name])
    print(f"wrote {len(rows)} intensity rows and {len(pycountry.countries)} country codes")


if __name__ == "__main__":
    main()
