"""A command group whose subcommands are imported and built only when one is used.

Building every command (typer turns each signature, option and help text into click objects)
and importing every command module made up a large share of ``llem --help``'s start-up time.
The root group lists its commands from a small table (name, module, first paragraph of the
help) and imports a command's module when that command is resolved: ``llem run ...`` builds
only ``run``. ``llem --help`` lists the commands from the table, through the same formatting
code as a built command, so its text is unchanged; tests/test_cli_startup.py checks the table
against the built commands.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any, ClassVar, NamedTuple

import typer
from typer.core import TyperCommand, TyperGroup


class LazyCommand(NamedTuple):
    """Where a subcommand is defined and what ``llem --help`` says about it.

    (A named tuple: a dataclass costs 0.7 ms to create, half of this module's import.)
    """

    module: str
    """Module whose ``register(app)`` adds the command to a typer app."""
    summary: str
    """First paragraph of the command's help (all the command list shows of it)."""


class HelpFlagGroup(TyperGroup):
    """A ``TyperGroup`` whose ``--help`` flag is False, not None, when not given.

    Typer (0.29) leaves an absent ``--help`` flag None, and coercing a value that is not a
    bool builds a pydantic ``TypeAdapter``: every command line that passes through a group
    (``llem doctor --help``, ``llem results list --help``) imported pydantic for nothing.
    """

    def get_help_option(self, ctx: Any) -> Any:
        option = super().get_help_option(ctx)
        if option is not None and option.default is None:
            option.default = False
        return option


class LazyGroup(HelpFlagGroup):
    """A ``TyperGroup`` that builds the subcommands of ``lazy_commands`` when first resolved.

    Subclasses set ``lazy_commands`` (in the order ``--help`` lists them) and
    ``app_options``: the ``typer.Typer`` settings a command is built with, the root app's own,
    so that a command built here is the one typer would have built inside the root app.
    """

    lazy_commands: ClassVar[Mapping[str, LazyCommand]] = {}
    app_options: ClassVar[Mapping[str, Any]] = {}

    def list_commands(self, ctx: Any) -> list[str]:
        return [*self.lazy_commands, *(n for n in self.commands if n not in self.lazy_commands)]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name not in self.commands and cmd_name in self.lazy_commands:
            self.commands[cmd_name] = self.build(cmd_name)
        return self.commands.get(cmd_name)

    def build(self, name: str) -> Any:
        """The click command ``name``, built by typer from its module's ``register``."""
        module = importlib.import_module(self.lazy_commands[name].module)
        holder = typer.Typer(**self.app_options)
        module.register(holder)
        return typer.main.get_group(holder).commands[name]

    def build_all(self) -> None:
        for name in self.lazy_commands:
            self.get_command(None, name)

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        # An unknown name: build every command so that typer's "Did you mean ...?" sees them.
        if args and args[0] not in self.commands and args[0] not in self.lazy_commands:
            self.build_all()
        return super().resolve_command(ctx, args)

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        """The command list, from the table for commands not built yet (same text)."""
        listed: dict[str, Any] = {}
        for name in self.list_commands(ctx):
            listed[name] = self.commands.get(name) or TyperCommand(
                name, help=self.lazy_commands[name].summary
            )
        TyperGroup.format_commands(TyperGroup(name=self.name, commands=listed), ctx, formatter)
