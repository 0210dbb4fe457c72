"""A fake powercap sysfs tree (``intel-rapl:*`` zones) in a temporary directory."""

from __future__ import annotations

from pathlib import Path

#: max_energy_range_uj of a typical package zone (about 262 kJ).
PACKAGE_RANGE_UJ = 262_143_328_850


class FakePowercap:
    """Zones as directories with ``name``, ``energy_uj`` and ``max_energy_range_uj`` files."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        (root / "intel-rapl").mkdir(exist_ok=True)  # the control-type directory, not a zone

    def add_zone(
        self, zone: str, name: str, energy_uj: int = 0, max_range_uj: int = PACKAGE_RANGE_UJ
    ) -> Path:
        """Create zone ``zone`` (e.g. 'intel-rapl:0:1') named ``name``."""
        path = self.root / zone
        path.mkdir()
        (path / "name").write_text(name + "\n")
        (path / "max_energy_range_uj").write_text(f"{max_range_uj}\n")
        (path / "energy_uj").write_text(f"{energy_uj}\n")
        return path

    def set_energy(self, zone: str, energy_uj: int) -> None:
        """Rewrite a zone's counter in place (same inode, as sysfs does)."""
        with open(self.root / zone / "energy_uj", "w") as fh:
            fh.write(f"{energy_uj}\n")

    def energy(self, zone: str) -> int:
        return int((self.root / zone / "energy_uj").read_text())


def standard_tree(root: Path, *, dram: bool = True, sockets: int = 1) -> FakePowercap:
    """Packages (each with core and optionally dram subzones), plus psys and an mmio duplicate."""
    tree = FakePowercap(root)
    for s in range(sockets):
        tree.add_zone(f"intel-rapl:{s}", f"package-{s}", energy_uj=1_000_000 * (s + 1))
        tree.add_zone(f"intel-rapl:{s}:0", "core", energy_uj=500_000)
        if dram:
            tree.add_zone(
                f"intel-rapl:{s}:1", "dram", energy_uj=70_000, max_range_uj=65_712_999_613
            )
    tree.add_zone(f"intel-rapl:{sockets}", "psys", energy_uj=9_000_000)
    tree.add_zone("intel-rapl-mmio:0", "package-0", energy_uj=1_000_000)
    return tree
