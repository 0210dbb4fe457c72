"""The `--region / --intensity / --pue / --usd-per-gpu-hour ...` options of the result commands.

They recompute carbon and cost from the stored energy and time (results/footprint.py) for
what is shown or exported; the result files are never changed. A command takes them all by
declaring one ``footprint`` parameter and the ``@with_footprint_options`` decorator.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from enum import Enum
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from llenergymeasure.results.footprint import FootprintOverrides

_HELP = "Recompute carbon with "
PANEL = "Carbon and cost (recomputed from stored energy and time)"


class EnergyBasisChoice(str, Enum):
    raw = "raw"
    idle_adjusted = "idle_adjusted"


REGION = typer.Option(
    None,
    "--region",
    help=_HELP + "this grid region: FR/FRA, US-CA, CA-QC, CN-BJ, SE3, WORLD ...",
    rich_help_panel=PANEL,
)
INTENSITY = typer.Option(
    None, "--intensity", help=_HELP + "this grid intensity (gCO2e/kWh).", rich_help_panel=PANEL
)
PUE = typer.Option(None, "--pue", help=_HELP + "this PUE (>= 1).", rich_help_panel=PANEL)
ENERGY_BASIS = typer.Option(
    None, "--energy-basis", help=_HELP + "raw or idle-adjusted energy.", rich_help_panel=PANEL
)
USD_PER_GPU_HOUR = typer.Option(
    None, "--usd-per-gpu-hour", help="Recompute cost at this GPU price.", rich_help_panel=PANEL
)
USD_PER_NODE_HOUR = typer.Option(
    None, "--usd-per-node-hour", help="Recompute cost at this node price.", rich_help_panel=PANEL
)
GPUS = typer.Option(
    None, "--gpus", help="GPUs to price (default: those metered).", rich_help_panel=PANEL
)


def overrides(
    region: str | None,
    intensity: float | None,
    pue: float | None,
    energy_basis: EnergyBasisChoice | None,
    usd_per_gpu_hour: float | None,
    usd_per_node_hour: float | None,
    gpus: int | None,
) -> FootprintOverrides:
    """The options as FootprintOverrides (all None: nothing is recomputed)."""
    from llenergymeasure.results.footprint import FootprintOverrides

    return FootprintOverrides(
        region=region,
        intensity_g_per_kwh=intensity,
        pue=pue,
        energy_basis=energy_basis.value if energy_basis else None,  # type: ignore[arg-type]
        usd_per_gpu_hour=usd_per_gpu_hour,
        usd_per_node_hour=usd_per_node_hour,
        gpu_count=gpus,
    )


def _resolved(command: Callable[..., Any], annotation: Any) -> Any:
    """A string annotation (``from __future__ import annotations``) as the type it names."""
    if not isinstance(annotation, str):
        return annotation
    return eval(annotation, command.__globals__)


def with_footprint_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Give ``command`` the seven options above in place of its ``footprint`` parameter.

    The command receives them as one ``FootprintOverrides`` (``footprint=``); typer reads the
    wrapper's signature, so ``--help`` and parsing are as if each option were spelt out.
    """
    own = [p for p in inspect.signature(command).parameters.values() if p.name != "footprint"]
    hints = {p.name: _resolved(command, p.annotation) for p in own}
    options = [
        ("region", str | None, REGION),
        ("intensity", float | None, INTENSITY),
        ("pue", float | None, PUE),
        ("energy_basis", EnergyBasisChoice | None, ENERGY_BASIS),
        ("usd_per_gpu_hour", float | None, USD_PER_GPU_HOUR),
        ("usd_per_node_hour", float | None, USD_PER_NODE_HOUR),
        ("gpus", int | None, GPUS),
    ]
    params = [p.replace(annotation=hints[p.name]) for p in own] + [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=opt, annotation=kind)
        for name, kind, opt in options
    ]
    names = [name for name, _, _ in options]

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        given = overrides(*(kwargs.pop(name) for name in names))
        return command(*args, footprint=given, **kwargs)

    wrapper.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    wrapper.__annotations__ = {p.name: p.annotation for p in params}
    return wrapper
