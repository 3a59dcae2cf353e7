"""Where the simulated platform's scenario files are found: shipped ones by name, others by path.

The scenarios in ``adapters/scenarios/`` ship inside the installed package (package data, read
with :mod:`importlib.resources`), so ``scenario: default`` works whatever the working directory
and however growthloop was installed. A reference is a **name** when it is a plain snake_case
word given as a string (``default``, ``small_account``); anything else (``my.yaml``,
``./scenarios/busy.yaml``, a :class:`~pathlib.Path`) is a path to a scenario file of one's own.
"""

from __future__ import annotations

import re
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

from agent.errors import ConfigError

SHIPPED = resources.files("adapters") / "scenarios"  # the shipped scenario files (package data)
DEFAULT_SCENARIO = "default"  # the scenario used when the config names none
_NAME = re.compile(r"^[a-z0-9_]+$")


def scenario_names() -> list[str]:
    """The names of the shipped scenarios, sorted."""
    files = (entry.name for entry in SHIPPED.iterdir())
    return sorted(name.removesuffix(".yaml") for name in files if name.endswith(".yaml"))


def is_scenario_name(ref: str | Path) -> bool:
    """True for a shipped scenario's name (a snake_case word given as a string), not a path."""
    return isinstance(ref, str) and _NAME.match(ref) is not None


def unknown_scenario(name: str) -> str:
    """The message for a name no shipped scenario has."""
    return (
        f"unknown scenario {name!r}; the shipped scenarios are {', '.join(scenario_names())} "
        "(or give the path of a scenario file)"
    )


def checked_reference(ref: str, *, base: Path | None) -> str:
    """``ref`` checked: a shipped scenario's name as it is (ValueError naming the shipped ones if
    there is none of that name), or a path, made relative to ``base`` unless absolute (or
    ``base`` is None). The file itself is read later, by :meth:`Scenario.load`."""
    if is_scenario_name(ref):
        if ref not in scenario_names():
            raise ValueError(unknown_scenario(ref))
        return ref
    path = Path(ref).expanduser()
    return str(path if base is None or path.is_absolute() else base / path)


def shipped_scenario(name: str) -> Traversable:
    """The file of the shipped scenario ``name``; ConfigError listing the shipped names if none."""
    file = SHIPPED / f"{name}.yaml"
    if not file.is_file():
        message = unknown_scenario(name)
        raise ConfigError(f"{message[0].upper()}{message[1:]}.")
    return file


def scenario_file(ref: str | Path) -> Traversable:
    """The scenario file ``ref`` names: a shipped scenario by name, else the path itself."""
    return shipped_scenario(ref) if isinstance(ref, str) and is_scenario_name(ref) else Path(ref)
