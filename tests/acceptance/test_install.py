"""A non-editable install, used from an empty directory with a config file somewhere else.

The wheel is built offline from a copy of the checkout with this environment's setuptools and
installed (without its dependencies) into a fresh virtualenv. The dependencies come from this
environment: a ``.pth`` file in the new virtualenv lists this environment's site-packages (paths
listed there are not scanned for ``.pth`` files, so this environment's editable install of the
project stays out of reach). The test checks that ``agent`` really is imported from the new
virtualenv, then runs ``growthloop --version``, ``simulate`` and ``run`` from an empty directory
with the example config copied into another folder: every file they write lands relative to that
folder, nothing in the working directory.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import sysconfig
import tomllib
import urllib.request
from pathlib import Path

import pytest

from agent.store.migrate import head_revision
from tests.acceptance.conftest import (
    EXAMPLE_CONFIG,
    REPO,
    cli_env,
    free_port,
    must_query,
    wait_for,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

# what the wheel build does not need (and must not be polluted with: build/ and *.egg-info)
NOT_BUILT = (".venv", ".git", "build", "dist", "*.egg-info", "__pycache__", ".*_cache", "data")
NOT_BUILT += ("tests", "docs", "bench")


def _run(*args: str | Path, cwd: Path, timeout: float = 300, **env: str) -> str:
    result = subprocess.run(
        [str(a) for a in args],
        cwd=cwd,
        env=_env(**env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert result.returncode == 0, f"{args}:\n{result.stdout}\n{result.stderr}"
    assert "Traceback" not in result.stderr, result.stderr
    return result.stdout


def _env(**extra: str) -> dict[str, str]:
    env = cli_env(**extra)
    env.pop("PYTHONPATH", None)  # the checkout must not be importable
    return env


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtualenv with growthloop installed from a wheel (not editable)."""
    tmp = tmp_path_factory.mktemp("install")
    source = tmp / "source"
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(*NOT_BUILT))
    pip = (sys.executable, "-m", "pip", "--disable-pip-version-check")
    offline = ("--no-deps", "--no-index")
    _run(*pip, "wheel", *offline, "--no-build-isolation", "-w", tmp, source, cwd=tmp)
    (wheel,) = tmp.glob("growthloop-*.whl")
    env = tmp / "venv"
    _run(sys.executable, "-m", "venv", "--without-pip", env, cwd=tmp)
    python = env / "bin" / "python"
    _run(*pip, "--python", python, "install", *offline, wheel, cwd=tmp)
    purelib = "import sysconfig; print(sysconfig.get_path('purelib'))"
    site = Path(_run(python, "-c", purelib, cwd=tmp).strip())
    ours = dict.fromkeys([sysconfig.get_path("purelib"), sysconfig.get_path("platlib")])
    (site / "growthloop-test-deps.pth").write_text("\n".join(ours) + "\n", encoding="utf-8")
    return env


def test_a_non_editable_install_runs_from_an_empty_directory_with_a_config_elsewhere(
    venv: Path, tmp_path: Path
) -> None:
    project, empty = tmp_path / "project", tmp_path / "empty"
    project.mkdir()
    empty.mkdir()
    config = shutil.copy(EXAMPLE_CONFIG, project / "growthloop.yaml")  # relative data paths
    growthloop = venv / "bin" / "growthloop"

    where = _run(venv / "bin" / "python", "-c", "import agent; print(agent.__file__)", cwd=empty)
    assert Path(where.strip()).is_relative_to(venv), f"agent imported from {where}"

    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    assert _run(growthloop, "--version", cwd=empty).strip() == f"growthloop {version}"
    example = _run(growthloop, "config", "example", cwd=empty)
    assert example == EXAMPLE_CONFIG.read_text(encoding="utf-8")

    # the regression: "Scenario file bench/scenarios/default.yaml cannot be read"
    out = _run(growthloop, "simulate", "--days", "3", "--config", config, cwd=empty)
    assert "Simulated 3 days" in out and "true ranking" in out
    simulation = project / "data" / "simulation.db"
    assert must_query(simulation, "SELECT COUNT(*) AS n FROM content")[0]["n"] >= 3
    assert list(empty.iterdir()) == []
    # the report's templates are in the wheel: simulate wrote its report beside the database
    assert [p.suffix for p in sorted((project / "data" / "report").iterdir())] == [".html", ".md"]

    log_path = tmp_path / "daemon.log"
    port, token = free_port(), "install-test-dashboard-token"
    with log_path.open("w", encoding="utf-8") as log:
        daemon = subprocess.Popen(
            [str(growthloop), "run", "--config", str(config)],
            cwd=empty,
            env=_env(PORT=str(port), GROWTHLOOP_DASHBOARD_TOKEN=token),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:

            def started() -> bool:
                assert daemon.poll() is None, log_path.read_text(encoding="utf-8")
                return '"daemon_started"' in log_path.read_text(encoding="utf-8")

            wait_for(started, timeout=60, what="daemon_started in the log")
            # the dashboard's templates are in the wheel too
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/dashboard", headers={"Authorization": f"Bearer {token}"}
            )
            with urllib.request.urlopen(request, timeout=30) as response:
                assert response.status == 200 and b"Pending work" in response.read()
            daemon.send_signal(signal.SIGTERM)
            assert daemon.wait(timeout=60) == 0, log_path.read_text(encoding="utf-8")
        finally:
            if daemon.poll() is None:
                daemon.kill()
                daemon.wait()

    store = project / "data" / "growthloop.db"  # migrated from the installed migrations
    assert must_query(store, "SELECT version_num FROM alembic_version") == [
        {"version_num": head_revision()}
    ]
    assert [r["handle"] for r in must_query(store, "SELECT handle FROM accounts")] == [
        "@growthloop_demo"
    ]
    assert (project / "data" / "sandbox-world.db").is_file()
    assert list(empty.iterdir()) == []
