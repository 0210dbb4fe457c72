"""The base class every domain model shares: strict about unknown fields and non-finite floats."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator


class DomainModel(BaseModel):
    """Strict pydantic model: unknown fields and NaN/inf are rejected, so JSON round-trips.

    Computed fields (derived figures written to JSON for readers) are dropped on input and
    recomputed, so a dumped model validates again unchanged.
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _drop_computed_fields(cls, data: Any) -> Any:
        computed = cls.model_computed_fields
        if computed and isinstance(data, dict) and any(name in data for name in computed):
            data = {k: v for k, v in data.items() if k not in computed}
        return data
