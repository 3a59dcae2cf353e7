"""Errors a user can fix: one paragraph on stderr, no traceback, exit code 2.

Every command line of this module is started at once by the module fixture ``results`` (they are
independent and each is mostly interpreter start-up), then each test checks its own result.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.acceptance.conftest import (
    EXAMPLE_CONFIG,
    REPO,
    cli_env,
    example_config,
    free_port,
    growthloop_command,
    merge,
    write_config,
)

pytestmark = pytest.mark.slow

CHECK = ("config", "check")  # + FILE
RUN = ("run", "--config")  # + FILE
COMMANDS = {"config check": CHECK, "run --config": RUN}


@dataclass
class Case:
    args: tuple[str | Path, ...]
    cwd: Path
    env: dict[str, str] = field(default_factory=cli_env)
    module: bool = False  # python -m agent instead of the console script


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


def _cases(tmp: Path) -> dict[str, Case]:
    def config(name: str, **overrides: Any) -> Path:
        defaults = {"store": {"sqlite_path": str(tmp / name / "data" / "growthloop.db")}}
        return write_config(tmp / f"{name}.yaml", **merge(defaults, overrides))

    raw = example_config()
    raw["cadence"]["posts_per_dya"] = raw["cadence"].pop("posts_per_day")
    typo = write_config(tmp / "typo.yaml", **raw)
    negative = config("negative", cadence={"posts_per_day": -1})
    wrong_types = config("types", polling={"horizons": ["soon"]}, runtime={"tick": True})
    broken = tmp / "broken.yaml"
    broken.write_text("mode: live\naccounts: [\n  - name: x\n", encoding="utf-8")
    accounts = example_config()["accounts"]
    accounts[0]["platform"] = "x"
    on_x = config("on_x", accounts=accounts)
    no_x_env = {k: v for k, v in cli_env().items() if not k.startswith("DEMO_")}
    # Tests may run as root, which ignores permission bits: a regular file where the data
    # directory should be stops everyone.
    (tmp / "file.txt").write_text("not a directory\n", encoding="utf-8")
    blocked = config(
        "blocked",
        store={"sqlite_path": str(tmp / "file.txt" / "data" / "growthloop.db")},
        sandbox={"world_path": str(tmp / "world" / "sandbox-world.db")},
        server={"host": "127.0.0.1", "port": free_port()},
    )

    cases: dict[str, Case] = {}
    for label, command in COMMANDS.items():
        cases[f"typo/{label}"] = Case((*command, typo), tmp)
        cases[f"negative/{label}"] = Case((*command, negative), tmp)
        cases[f"types/{label}"] = Case((*command, wrong_types), tmp)
        cases[f"yaml/{label}"] = Case((*command, broken), tmp)
        cases[f"missing/{label}"] = Case((*command, tmp / "nowhere.yaml"), tmp)
        cases[f"secret/{label}"] = Case((*command, on_x), tmp, env=no_x_env)
    cases["unknown scenario name"] = Case(
        (*CHECK, config("unknown_scenario", sandbox={"scenario": "defualt"})), tmp
    )
    cases["simulate unknown scenario"] = Case(("simulate", "--scenario", "defualt"), tmp)
    cases["env config"] = Case(("run",), tmp, env=cli_env(GROWTHLOOP_CONFIG=str(typo)))
    cases["blocked data dir"] = Case((*RUN, blocked), tmp)
    cases["example ok"] = Case((*CHECK, EXAMPLE_CONFIG), tmp)
    cases["default in checkout"] = Case(CHECK, REPO)
    cases["default anywhere"] = Case(CHECK, tmp)
    cases["module help"] = Case(("--help",), tmp, module=True)
    cases["run help"] = Case(("run", "--help"), tmp)
    return cases


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Result]:
    tmp = tmp_path_factory.mktemp("cli_errors")
    procs: dict[str, tuple[subprocess.Popen[str], Any, Any]] = {}
    try:
        for name, case in _cases(tmp).items():
            safe = name.replace("/", "_").replace(" ", "_")
            out = (tmp / f"{safe}.out").open("w+", encoding="utf-8")
            err = (tmp / f"{safe}.err").open("w+", encoding="utf-8")
            command = [sys.executable, "-m", "agent"] if case.module else growthloop_command()
            procs[name] = (
                subprocess.Popen(
                    [*command, *map(str, case.args)],
                    cwd=case.cwd,
                    env=case.env,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=err,
                    text=True,
                ),
                out,
                err,
            )
        done = {}
        for name, (proc, out, err) in procs.items():
            code = proc.wait(timeout=90)
            out.seek(0)
            err.seek(0)
            done[name] = Result(code, out.read(), err.read())
        return done
    finally:
        for proc, out, err in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            out.close()
            err.close()


@pytest.fixture
def result(results: dict[str, Result]) -> Callable[[str], Result]:
    return results.__getitem__


def assert_user_error(result: Result, *needles: str) -> str:
    """Exit 2, nothing on stdout, one paragraph on stderr naming every needle, no traceback."""
    err = result.stderr.strip()
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    assert err.startswith("growthloop:"), err
    assert "\n\n" not in err, f"more than one paragraph:\n{err}"
    assert '"event"' not in err, f"a log line instead of a message:\n{err}"
    for needle in needles:
        assert needle in err, f"{needle!r} not in:\n{err}"
    return err


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_unknown_key_names_its_key_path(result: Callable[[str], Result], command: str) -> None:
    assert_user_error(result(f"typo/{command}"), "cadence.posts_per_dya", "unknown key")


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_wrong_value_names_its_key_path(result: Callable[[str], Result], command: str) -> None:
    err = assert_user_error(result(f"negative/{command}"), "cadence.posts_per_day")
    assert "negative.yaml" in err


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_wrong_types_name_every_key_path(result: Callable[[str], Result], command: str) -> None:
    assert_user_error(
        result(f"types/{command}"), "2 problems", "polling.horizons[0]", "runtime.tick"
    )


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_invalid_yaml_names_the_file_and_line(
    result: Callable[[str], Result], command: str
) -> None:
    assert_user_error(result(f"yaml/{command}"), "broken.yaml", "not valid YAML", "line ")


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_missing_config_file(result: Callable[[str], Result], command: str) -> None:
    assert_user_error(result(f"missing/{command}"), "nowhere.yaml", "does not exist")


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_missing_secret_names_the_account_and_the_variables(
    result: Callable[[str], Result], command: str
) -> None:
    assert_user_error(
        result(f"secret/{command}"),
        "Missing secrets",
        "'demo'",
        "DEMO_X_API_KEY",
        "DEMO_X_API_SECRET",
        "DEMO_X_ACCESS_TOKEN",
        "DEMO_X_ACCESS_TOKEN_SECRET",
    )


def test_unknown_scenario_name_lists_the_shipped_ones(result: Callable[[str], Result]) -> None:
    assert_user_error(
        result("unknown scenario name"), "sandbox.scenario", "'defualt'", "default, demo_realtime"
    )
    assert_user_error(
        result("simulate unknown scenario"), "--scenario", "'defualt'", "small_account"
    )


def test_config_from_the_environment_variable(result: Callable[[str], Result]) -> None:
    assert_user_error(result("env config"), "typo.yaml", "cadence.posts_per_dya")


def test_data_directory_that_cannot_be_created(result: Callable[[str], Result]) -> None:
    err = assert_user_error(result("blocked data dir"), "data directory", "store.sqlite_path")
    assert "file.txt/data" in err


def test_example_config_checks_ok(result: Callable[[str], Result]) -> None:
    ok = result("example ok")
    assert ok.returncode == 0, ok.stderr
    assert "ok" in ok.stdout and "demo (sandbox)" in ok.stdout
    assert "Traceback" not in ok.stderr


def test_default_config_is_built_in_inside_and_outside_a_checkout(
    result: Callable[[str], Result],
) -> None:
    for case in ("default in checkout", "default anywhere"):
        ok = result(case)
        assert ok.returncode == 0, ok.stderr
        assert "ok built-in config: demo (sandbox)" in ok.stdout


def test_python_dash_m_agent_help_lists_the_commands(result: Callable[[str], Result]) -> None:
    help_ = result("module help")
    assert help_.returncode == 0, help_.stderr
    for name in ("run", "simulate", "migrate", "health", "config"):
        assert name in help_.stdout, help_.stdout
    run_help = result("run help")
    assert run_help.returncode == 0, run_help.stderr
    assert "GROWTHLOOP_CONFIG" in run_help.stdout
