"""The deploy kit (Procfile, railway.json, app.json, .python-version, requirements.txt,
docs/deploy.md), each checked where it can be without the network: every command it runs is a
real `growthloop` command, railway.json fits Railway's documented config-as-code fields, every
variable app.json offers is one growthloop reads, the pinned Python satisfies requires-python."""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import typer
from packaging.specifiers import SpecifierSet
from packaging.version import Version
from typer.testing import CliRunner

from agent.cli import app
from agent.config import Secrets

REPO = Path(__file__).resolve().parents[2]
# `growthloop posts` comes with the queue commands (issue 15, item 7), built beside this kit;
# docs/deploy.md already shows them
# Railway's config-as-code fields (docs.railway.com/config-as-code/reference), as a JSON schema:
# a misspelt or unknown key is refused (Railway would silently ignore it).
RAILWAY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["$schema", "build", "deploy"],
    "additionalProperties": False,
    "properties": {
        "$schema": {"const": "https://railway.com/railway.schema.json"},
        "build": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "builder": {"enum": ["RAILPACK", "DOCKERFILE", "NIXPACKS"]},
                "watchPatterns": {"type": "array", "items": {"type": "string"}},
                "buildCommand": {"type": ["string", "null"]},
                "dockerfilePath": {"type": ["string", "null"]},
            },
        },
        "deploy": {
            "type": "object",
            "required": ["startCommand", "healthcheckPath", "restartPolicyType"],
            "additionalProperties": False,
            "properties": {
                "startCommand": {"type": "string"},
                "preDeployCommand": {
                    "oneOf": [
                        {"type": "string"},
                        {"type": "array", "items": {"type": "string"}, "minItems": 1},
                    ]
                },
                "healthcheckPath": {"type": "string", "pattern": "^/"},
                "healthcheckTimeout": {"type": "integer", "minimum": 1},
                "restartPolicyType": {"enum": ["ON_FAILURE", "ALWAYS", "NEVER"]},
                "restartPolicyMaxRetries": {"type": "integer", "minimum": 0},
                "drainingSeconds": {"type": "integer", "minimum": 0},
                "overlapSeconds": {"type": "integer", "minimum": 0},
                "numReplicas": {"type": "integer", "minimum": 1},
                "sleepApplication": {"type": "boolean"},
                "cronSchedule": {"type": ["string", "null"]},
            },
        },
    },
}


def procfile() -> dict[str, str]:
    processes = {}
    for line in (REPO / "Procfile").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, command = line.partition(":")
            assert re.fullmatch(r"[a-z][a-z0-9_-]*", name), f"bad process type {name!r}"
            processes[name] = command.strip()
    return processes


def railway() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((REPO / "railway.json").read_text(encoding="utf-8"))
    return data


def app_json() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((REPO / "app.json").read_text(encoding="utf-8"))
    return data


ROOT: Any = typer.main.get_command(app)  # a group (Typer ships its own copy of click)


def command_path(words: list[str]) -> list[str]:
    """The command (and a group's subcommand) ``words`` start with; [] when not a command."""
    command = ROOT.commands.get(words[0]) if words else None
    if command is None:
        return []
    subcommands = getattr(command, "commands", None)
    if subcommands is not None:
        return words[:2] if len(words) > 1 and words[1] in subcommands else []
    return words[:1]


def assert_growthloop_command(command: str) -> None:
    """``command`` is ``growthloop SUB... [options]``, a real command whose --help works."""
    words = shlex.split(command)
    assert words[0] == "growthloop", command
    path = command_path(words[1:])
    assert path, f"{command!r} is not a growthloop command"
    result = CliRunner().invoke(app, [*path, "--help"])
    assert result.exit_code == 0, (command, result.output)
    assert "Usage:" in result.output


def test_procfile_migrates_on_release_and_runs_one_worker() -> None:
    processes = procfile()
    assert processes == {"release": "growthloop migrate", "worker": "growthloop run"}
    for command in processes.values():
        assert_growthloop_command(command)


def test_a_command_that_does_not_exist_fails_the_check() -> None:
    with pytest.raises(AssertionError):
        assert_growthloop_command("growthloop migrat")


def test_railway_json_fits_railways_documented_fields() -> None:
    config = railway()
    jsonschema.validate(config, RAILWAY_SCHEMA)
    deploy = config["deploy"]
    assert deploy["healthcheckPath"] == "/healthz"
    assert deploy["restartPolicyType"] == "ON_FAILURE"
    assert deploy["startCommand"] == procfile()["worker"]
    assert deploy["preDeployCommand"] == [procfile()["release"]]
    # SIGTERM to SIGKILL: longer than the daemon's default shutdown grace (8 s)
    assert deploy["drainingSeconds"] > 8
    for command in [deploy["startCommand"], *deploy["preDeployCommand"]]:
        assert_growthloop_command(command)


def test_the_railway_schema_refuses_a_misspelt_key() -> None:
    config = railway()
    config["deploy"]["healthCheckPath"] = config["deploy"].pop("healthcheckPath")
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(config, RAILWAY_SCHEMA)


def variables_growthloop_reads() -> set[str]:
    """Secrets' fields, every CLI option's GROWTHLOOP_* variable, and each quoted upper-case
    name the code looks up in os.environ."""
    names = {name.upper() for name in Secrets.model_fields}
    source = "\n".join(p.read_text(encoding="utf-8") for p in (REPO / "agent").rglob("*.py"))
    names |= set(re.findall(r'envvar="([A-Z0-9_]+)"', source))
    names |= set(re.findall(r'environ(?:\.get)?[\(\[]"([A-Z0-9_]+)"', source))
    names |= set(re.findall(r'^[A-Z_]+_ENV = "([A-Z0-9_]+)"', source, re.MULTILINE))
    return names


def test_app_json_declares_the_worker_postgres_and_only_variables_growthloop_reads() -> None:
    manifest = app_json()
    for key in ("name", "description", "env", "addons", "formation", "scripts"):
        assert manifest.get(key), f"app.json has no {key}"
    assert set(manifest["formation"]) <= set(procfile()), "a formation type not in the Procfile"
    assert manifest["formation"]["worker"]["quantity"] == 1
    assert manifest["formation"].get("web", {"quantity": 0})["quantity"] == 0
    plans = [a["plan"] if isinstance(a, dict) else a for a in manifest["addons"]]
    assert any(p.split(":")[0] == "heroku-postgresql" for p in plans)
    read = variables_growthloop_reads()
    assert {"DATABASE_URL", "OPENAI_API_KEY", "GROWTHLOOP_CONFIG", "PORT"} <= read
    for name, spec in manifest["env"].items():
        assert name in read, f"app.json offers {name}, which growthloop never reads"
        assert isinstance(spec.get("required"), bool) and spec.get("description"), name
    for command in manifest["scripts"].values():
        for part in command.split("&&"):
            assert_growthloop_command(part.strip())


def test_pinned_python_satisfies_requires_python() -> None:
    pinned = (REPO / ".python-version").read_text(encoding="utf-8").strip()
    assert re.fullmatch(r"3\.\d+", pinned), pinned  # major.minor: the builders pick the patch
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert Version(pinned) in SpecifierSet(project["requires-python"])


def test_requirements_txt_installs_the_project_itself() -> None:
    lines = (REPO / "requirements.txt").read_text(encoding="utf-8").splitlines()
    assert [line for line in lines if line.strip() and not line.startswith("#")] == ["."]


def test_deploy_doc_is_linked_and_its_commands_exist() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    operations = (REPO / "docs" / "operations.md").read_text(encoding="utf-8")
    doc = (REPO / "docs" / "deploy.md").read_text(encoding="utf-8")
    assert "(docs/deploy.md)" in readme
    assert "(deploy.md)" in operations
    for platform in ("Railway", "Supabase", "Heroku"):
        assert f"## {platform}" in doc or f"# {platform}" in doc, platform
    # every `growthloop ...` in a code span or block of the page
    blocks = re.findall(r"```sh\n(.*?)```", doc, re.S)
    spans = re.findall(r"`([^`\n]+)`", re.sub(r"```.*?```", "", doc, flags=re.S))
    code = "\n".join(blocks + spans)
    commands = {m.strip() for m in re.findall(r"\bgrowthloop((?: [a-z]+){1,2})", code)}
    assert {"health", "pause", "drafts list", "posts list", "migrate", "run"} <= {
        " ".join(c.split()[:2]) if c.split()[0] in {"drafts", "posts"} else c.split()[0]
        for c in commands
    }
    for found in sorted(commands):
        words = found.split()
        assert command_path(words), f"docs/deploy.md: `growthloop {found}` is not a command"
        assert_growthloop_command("growthloop " + found)
