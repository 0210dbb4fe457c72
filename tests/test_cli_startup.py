"""`llem --help` stays light: commands are built when used, and the help text is unchanged.

The root group lists its commands from a table (cli/main.py COMMANDS) instead of building
them; these tests hold the table to the built commands and check, in a fresh interpreter, what
`llem --help` and `llem <command> --help` import.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys

import pytest
import typer
from typer.core import TyperGroup

from llenergymeasure.cli.main import _APP_OPTIONS, COMMANDS, app, main
from tests.cli_helpers import ROOT, run_llem, source_env

# What no `--help` may import: the libraries and layers the commands use when they run.
HEAVY = (
    "llenergymeasure.config",
    "llenergymeasure.domain",
    "llenergymeasure.results",
    "llenergymeasure.measure",
    "rich",
    "pydantic",
    "numpy",
    "yaml",
    "pyarrow",
    "aiohttp",
    "torch",
    "transformers",
    "matplotlib",
    "pandas",
)
# What `llem --help` does not import either: the command modules and their helpers.
COMMAND_MODULES = (
    *(entry.module for entry in COMMANDS.values()),
    "llenergymeasure.cli.footprint_opts",
    "llenergymeasure.cli.console",
)


def _eager_group() -> TyperGroup:
    """The root group as typer builds it with every command registered up front."""
    options: dict[str, object] = {"name": "llem", "help": app.info.help, **_APP_OPTIONS}
    eager = typer.Typer(no_args_is_help=True, **options)  # type: ignore[arg-type]
    eager.registered_callback = app.registered_callback
    for entry in COMMANDS.values():
        importlib.import_module(entry.module).register(eager)
    group = typer.main.get_command(eager)
    assert isinstance(group, TyperGroup)
    return group


def _help(group: typer.core.TyperGroup, width: int) -> str:
    ctx = group.make_context("llem", [], terminal_width=width, resilient_parsing=True)
    return ctx.get_help()


def test_table_matches_built_commands() -> None:
    eager = _eager_group()
    assert list(COMMANDS) == eager.list_commands(None)  # type: ignore[arg-type]
    for name, entry in COMMANDS.items():
        built = eager.commands[name]
        assert entry.summary == built.help.split("\n\n")[0], name
        assert (built.short_help, built.hidden, built.deprecated) == (None, False, False), name


def test_every_command_module_is_in_the_table() -> None:
    cli = ROOT / "src" / "llenergymeasure" / "cli"
    defined = {
        f"llenergymeasure.cli.{path.stem}"
        for path in cli.glob("*.py")
        if "\ndef register(app" in path.read_text()
    }
    assert defined == {entry.module for entry in COMMANDS.values()}


@pytest.mark.parametrize("width", [50, 60, 80, 120, 200])
def test_root_help_is_the_eager_groups(width: int) -> None:
    lazy = typer.main.get_command(app)
    assert isinstance(lazy, TyperGroup)
    assert _help(lazy, width) == _help(_eager_group(), width)
    assert not lazy.commands  # the listing built nothing


@pytest.mark.parametrize("name", list(COMMANDS))
def test_each_command_built_lazily_is_the_eager_one(name: str) -> None:
    lazy = typer.main.get_command(app)
    eager = _eager_group()
    ctx = lazy.make_context("llem", [], resilient_parsing=True)
    built = lazy.get_command(ctx, name)  # type: ignore[attr-defined]
    assert set(lazy.commands) == {name}  # type: ignore[attr-defined]
    reference = eager.commands[name]
    assert type(built) is type(reference)
    assert [p.opts for p in built.params] == [p.opts for p in reference.params]
    sub = built.make_context(name, [], parent=ctx, resilient_parsing=True)
    ref = reference.make_context(name, [], parent=ctx, resilient_parsing=True)
    assert sub.get_help() == ref.get_help()


def _imported_by(*args: str) -> set[str]:
    code = (
        "import json, sys\n"
        "from llenergymeasure.cli.main import main\n"
        "try:\n"
        f"    main({list(args)!r})\n"
        "except SystemExit as exc:\n"
        "    assert exc.code == 0, exc.code\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=source_env(),
        check=True,
    )
    return set(json.loads(proc.stdout.splitlines()[-1]))


def _within(modules: set[str], packages: tuple[str, ...]) -> list[str]:
    """The modules that are one of ``packages`` or inside one."""
    return sorted(m for m in modules if any(m == p or m.startswith(p + ".") for p in packages))


def test_root_help_imports_no_command_module_nor_heavy_library() -> None:
    modules = _imported_by("--help")
    assert "typer" in modules and "llenergymeasure.cli.lazy" in modules
    assert not _within(modules, HEAVY + COMMAND_MODULES)


# Command modules built on another one (study's reporter extends run's; report uses results').
SHARED = {"study": {"run"}, "report": {"results"}}


@pytest.mark.parametrize("args", [[name] for name in COMMANDS] + [["results", "show"]])
def test_a_command_help_imports_that_command_and_nothing_heavy(args: list[str]) -> None:
    modules = _imported_by(*args, "--help")
    assert COMMANDS[args[0]].module in modules
    allowed = {args[0], *SHARED.get(args[0], set())}
    others = tuple(e.module for n, e in COMMANDS.items() if n not in allowed)
    assert not _within(modules, others)
    # pydantic came in through typer's coercion of the root group's absent --help flag
    assert not _within(modules, HEAVY)


def test_unknown_command_still_suggests(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["reslts"])
    assert info.value.code == 2
    assert "No such command 'reslts'. Did you mean 'results'?" in capsys.readouterr().err


def test_no_arguments_prints_the_root_help() -> None:
    proc = run_llem(timeout=60)
    assert proc.returncode == 2
    assert proc.stdout.startswith("Usage: llem [OPTIONS] COMMAND [ARGS]...")
    listed = [line.split()[0] for line in proc.stdout.split("Commands:\n")[1].splitlines()]
    assert listed == list(COMMANDS)
