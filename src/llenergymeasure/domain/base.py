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
        # The class attribute itself: ``model_computed_fields`` goes through a deprecation
        # descriptor that costs more than the rest of this check, on every nested model.
        computed = cls.__pydantic_computed_fields__
        if computed and isinstance(data, dict) and any(name in data for name in computed):
            data = {k: v for k, v in data.items() if k not in computed}
        return data
