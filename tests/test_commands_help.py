"""`--help` works on `finintel` and on every registered command, and names each option.

The commands are discovered from the Typer app, so a new command is covered without
touching this file.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from finintel.cli import app

# The commands that exist today; the discovered set must contain at least these.
KNOWN_COMMANDS = {
    "validate",
    "features",
    "generate",
    "run",
    "score",
    "demo",
    "report",
    "dashboard",
    "version",
}

# Wide, colourless output so option names are never wrapped, cut or split by styling.
HELP_ENV = {"COLUMNS": "200", "TERMINAL_WIDTH": "200", "NO_COLOR": "1", "TERM": "dumb"}
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def _commands() -> dict[str, Any]:
    """The registered commands by name, read from the command the Typer app builds.

    Duck-typed on purpose: Typer ships its own copy of Click, so its classes are not Click's.
    """
    group = typer.main.get_command(app)
    commands: dict[str, Any] = dict(getattr(group, "commands", {}))
    return commands


COMMANDS = _commands()


def _help(*args: str) -> str:
    result = CliRunner().invoke(app, [*args, "--help"], env=HELP_ENV)
    assert result.exit_code == 0, f"finintel {' '.join(args)} --help exited {result.exit_code}"
    assert result.exception is None, result.exception
    return ANSI.sub("", result.output)


def _named_in(text: str, name: str, *, ignore_case: bool = False) -> bool:
    """Whether `name` appears as a whole word (so `--out` does not match `--outdir`)."""
    flags = re.IGNORECASE if ignore_case else 0
    return re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", text, flags) is not None


def test_the_known_commands_are_discovered() -> None:
    missing = KNOWN_COMMANDS - set(COMMANDS)
    assert not missing, f"commands no longer registered: {sorted(missing)}"


def test_top_level_help_lists_every_command() -> None:
    text = _help()
    assert "Usage:" in text
    missing = [
        name for name, command in COMMANDS.items() if not command.hidden and name not in text
    ]
    assert not missing, f"`finintel --help` does not list: {missing}"


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_command_help_names_its_options(name: str) -> None:
    text = _help(name)
    assert "Usage:" in text
    assert _named_in(text, name), f"`finintel {name} --help` does not name the command"
    missing: list[str] = []
    for param in COMMANDS[name].params:
        if param.hidden:
            continue
        if param.param_type_name == "option":
            names = [*param.opts, *param.secondary_opts]
            missing += [option for option in names if not _named_in(text, option)]
        elif not _named_in(text, param.metavar or param.name, ignore_case=True):
            # Arguments are shown by name (`run_dir` or `RUN_DIR`, depending on the Typer version).
            missing.append(param.metavar or param.name)
    assert not missing, f"`finintel {name} --help` does not name: {missing}"
    assert _named_in(text, "--help")
