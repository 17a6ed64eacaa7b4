"""An example custom source written with the Python SDK: hourly weather readings of one city."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field

from syncline.sdk import Item, SimpleSource, State, Stream

START = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
STATIONS = [("LIS", "Lisbon Airport", 38.77, 114), ("OPO", "Porto Airport", 41.24, 70),
            ("FAO", "Faro Airport", 37.01, 7)]


def reading(city: str, n: int) -> dict[str, Any]:
    """The n-th hourly reading (from 1), as the simulated weather API returns it."""
    seed = sum(map(ord, city)) * 7 + n * 13
    return {
        "id": n,
        "city": city,
        "taken_at": (START + dt.timedelta(hours=n - 1)).isoformat().replace("+00:00", "Z"),
        "temperature": round(8 + (seed % 170) / 10, 1),
        "rain": seed % 3 == 0,
        "wind": {"speed_kmh": seed % 45, "direction": "NESW"[seed % 4]},
        "note": "gusty" if seed % 5 == 0 else None,
    }


class Weather(SimpleSource):
    """Readings page by page (one page per day), resumable after the last page committed."""

    class Config(BaseModel):
        model_config = ConfigDict(extra="forbid")
        city: str = Field(description="City whose readings are replicated.")
        days: int = Field(3, ge=1, le=366, description="Days of readings the API holds.")
        per_day: int = Field(24, ge=1, le=24, description="Readings per day (one page).")

    config: Config

    def streams(self) -> list[Stream]:
        return [
            Stream("readings", primary_key=["id"], cursor="taken_at"),  # types inferred
            Stream("stations", primary_key=["code"],
                   columns={"code": "string", "name": "string", "lat": "float64", "elevation_m": "int32"}),
        ]

    def read(self, stream: str, state: dict[str, Any] | None) -> Iterator[Item]:
        if stream == "stations":
            code, name, lat, elevation = zip(*STATIONS)
            yield pa.table({"code": code, "name": name, "lat": lat, "elevation_m": elevation})
            return
        after = (state or {}).get("after")  # taken_at of the last reading committed
        for page in self._pages(after):
            yield from page
            yield State({"after": page[-1]["taken_at"]})

    def _pages(self, after: str | None) -> Iterator[list[dict[str, Any]]]:
        """What a paginated API would answer to `GET /readings?since=<after>`."""
        total = self.config.days * self.config.per_day
        newer = [reading(self.config.city, n) for n in range(1, total + 1)]
        newer = [r for r in newer if after is None or r["taken_at"] > after]
        for start in range(0, len(newer), self.config.per_day):
            yield newer[start:start + self.config.per_day]
