"""``growthloop report --upload`` against a local Supabase Storage (tests/unit/storage_server.py),
through the real ``supabase`` client: the bucket is made private, the object is the written HTML,
the signed URL serves it until it expires and is refused after; missing settings, a public
bucket, the anon key and an unreachable server are clear errors; the key is never printed."""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
import yaml
from supabase import AsyncClientOptions, acreate_client
from typer.testing import CliRunner

from agent.cli import app
from agent.config import DEFAULT_REPORT_BUCKET, load_config
from agent.errors import ConfigError
from agent.logs import REDACTED, redact_text
from tests.conftest import make_config
from tests.report_sim import report_raw
from tests.unit.storage_server import JWT_SECRET, StorageServer

LINK = re.compile(r"link \(expires [^)]*\): (\S+)")


@pytest.fixture
def storage() -> Iterator[StorageServer]:
    """The server on its own event loop in a thread: the CLI runs its own asyncio.run."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    server = asyncio.run_coroutine_threadsafe(StorageServer().start(), loop).result(10)
    yield server
    asyncio.run_coroutine_threadsafe(server.stop(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    loop.close()


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    monkeypatch.chdir(tmp_path)  # no .env; the SQLite store in tmp_path/data
    for name in ("DATABASE_URL", "SUPABASE_URL", "SUPABASE_SERVICE_ROLE_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("GROWTHLOOP_REPORT_EXPIRES", raising=False)
    return monkeypatch


def config_file(tmp_path: Path, **report: Any) -> Path:
    raw = report_raw(accounts=1)
    raw["store"] = {"sqlite_path": str(tmp_path / "data" / "g.db")}
    if report:
        raw["report"] = report
    path = tmp_path / "growthloop.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def run(tmp_path: Path, *args: str, config: Path | None = None) -> Any:
    config = config or config_file(tmp_path)
    return CliRunner().invoke(
        app, ["report", "--out", str(tmp_path / "reports"), "--config", str(config), *args]
    )


def use(env: pytest.MonkeyPatch, storage: StorageServer, key: str | None = None) -> None:
    env.setenv("SUPABASE_URL", storage.url)
    env.setenv("SUPABASE_SERVICE_ROLE_KEY", storage.service_key if key is None else key)


async def exists(storage: StorageServer, bucket: str, path: str) -> bool:
    """What the supabase client says (object info) about ``bucket``/``path``."""
    async with httpx.AsyncClient() as http:
        client = await acreate_client(
            storage.url, storage.service_key, options=AsyncClientOptions(httpx_client=http)
        )
        return await client.storage.from_(bucket).exists(path)


def link(output: str) -> str:
    found = LINK.search(output.replace("\n", ""))
    assert found, output
    return found.group(1)


def test_upload_stores_the_html_privately_and_the_signed_url_serves_it(
    env: pytest.MonkeyPatch, storage: StorageServer, tmp_path: Path
) -> None:
    use(env, storage)
    result = run(tmp_path, "--upload")
    assert result.exit_code == 0, result.output
    assert storage.buckets[DEFAULT_REPORT_BUCKET]["public"] is False  # created, private
    assert "bucket created, private" in result.output
    (html,) = (tmp_path / "reports").glob("*.html")
    ((bucket, path),) = storage.objects
    assert bucket == DEFAULT_REPORT_BUCKET
    assert re.fullmatch(r"reports/all/\d{8}T\d{6}Z-[0-9a-f]{8}\.html", path)
    stored = storage.objects[bucket, path]
    assert stored.body == html.read_bytes() and stored.content_type.startswith("text/html")
    assert asyncio.run(exists(storage, bucket, path))
    assert not asyncio.run(exists(storage, bucket, path.replace("reports/", "other/")))
    # every keyed request carried the project key as apikey and as the bearer token
    keyed = [h for method, p, h in storage.requests if not p.startswith("/storage/v1/object/sign/")]
    assert keyed and all(h["apikey"] == storage.service_key for h in keyed)
    assert all(h["authorization"] == f"Bearer {storage.service_key}" for h in keyed)

    url = link(result.output)
    assert url.startswith(f"{storage.url}/storage/v1/object/sign/{bucket}/{path}?token=")
    served = httpx.get(url)  # no key: the link is the credential
    assert served.status_code == 200 and served.content == html.read_bytes()
    assert f"filename={html.name}" in served.headers["content-disposition"]
    assert served.headers["content-type"] == "text/plain"  # Storage never serves HTML as HTML
    claims = jwt.decode(
        httpx.URL(url).params["token"], JWT_SECRET, algorithms=["HS256"], audience=None
    )
    assert claims["exp"] - claims["iat"] == 7 * 86400  # report.signed_url_expiry's default

    # the key appears nowhere we print, and the logs' redaction knows its variable
    assert storage.service_key not in result.output
    assert redact_text(f"key={storage.service_key}") == f"key={REDACTED}"

    again = run(tmp_path, "--upload", "--until", "2030-01-02")
    assert again.exit_code == 0, again.output
    assert "bucket created" not in again.output and len(storage.objects) == 2


def test_the_link_works_until_it_expires_then_is_refused(
    env: pytest.MonkeyPatch, storage: StorageServer, tmp_path: Path
) -> None:
    use(env, storage)
    result = run(tmp_path, "--upload", "--account", "demo", "--expires", "2h")
    assert result.exit_code == 0, result.output
    ((_, path),) = storage.objects
    assert path.startswith("reports/demo/")
    url = link(result.output)
    storage.advance(timedelta(hours=1, minutes=59))
    assert httpx.get(url).status_code == 200
    storage.advance(timedelta(minutes=2))
    refused = httpx.get(url)
    assert refused.status_code == 400
    assert refused.json()["error"] == "InvalidJWT" and "expired" in refused.json()["message"]
    # a link made for one object does not read another
    other = url.replace(path, path.replace(".html", "-x.html"))
    storage.offset = timedelta(0)
    assert httpx.get(other).json()["error"] == "InvalidSignature"


def test_the_configured_expiry_is_the_links_lifetime(
    env: pytest.MonkeyPatch, storage: StorageServer, tmp_path: Path
) -> None:
    use(env, storage)
    config = config_file(tmp_path, signed_url_expiry="90m", bucket="team-reports")
    result = run(tmp_path, "--upload", config=config)
    assert result.exit_code == 0, result.output
    assert set(storage.buckets) == {"team-reports"}
    token = httpx.URL(link(result.output)).params["token"]
    claims = jwt.decode(token, JWT_SECRET, algorithms=["HS256"])
    assert claims["exp"] - claims["iat"] == 90 * 60


@pytest.mark.parametrize(
    ("variables", "missing"),
    [
        ({}, "SUPABASE_URL, SUPABASE_SERVICE_ROLE_KEY"),
        ({"SUPABASE_URL": "https://abcdefghijklmnop.supabase.co"}, "SUPABASE_SERVICE_ROLE_KEY"),
        ({"SUPABASE_SERVICE_ROLE_KEY": "secret-key-value"}, "missing: SUPABASE_URL."),
    ],
)
def test_without_supabase_settings_it_says_what_to_set_with_exit_2(
    env: pytest.MonkeyPatch, tmp_path: Path, variables: dict[str, str], missing: str
) -> None:
    for name, value in variables.items():
        env.setenv(name, value)
    result = run(tmp_path, "--upload")
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert f"missing: {missing}" in text or missing in text
    assert "Project Settings > API" in text and "Traceback" not in text
    assert "secret-key-value" not in result.output
    assert not list(tmp_path.glob("reports/*.html"))  # refused before any work


def test_a_public_bucket_is_refused_not_used(
    env: pytest.MonkeyPatch, storage: StorageServer, tmp_path: Path
) -> None:
    storage.buckets[DEFAULT_REPORT_BUCKET] = {
        "id": DEFAULT_REPORT_BUCKET,
        "name": DEFAULT_REPORT_BUCKET,
        "owner": "",
        "public": True,
        "file_size_limit": None,
        "allowed_mime_types": None,
        "created_at": "2026-01-01T00:00:00Z",
        "updated_at": "2026-01-01T00:00:00Z",
    }
    use(env, storage)
    result = run(tmp_path, "--upload")
    assert result.exit_code == 2, result.output
    assert "is public" in result.output and not storage.objects


def test_the_anon_key_is_refused_with_a_hint_and_never_printed(
    env: pytest.MonkeyPatch, storage: StorageServer, tmp_path: Path
) -> None:
    use(env, storage, key=storage.anon_key)
    result = run(tmp_path, "--upload")
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert "row-level security" in text and "service_role key" in text
    assert storage.anon_key not in result.output and not storage.objects


def test_a_wrong_key_is_refused(
    env: pytest.MonkeyPatch, storage: StorageServer, tmp_path: Path
) -> None:
    use(env, storage, key="not-the-projects-key")
    result = run(tmp_path, "--upload")
    assert result.exit_code == 2, result.output
    assert "Invalid API key" in result.output and "not-the-projects-key" not in result.output


def test_unreachable_storage_exits_1(env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    env.setenv("SUPABASE_URL", "http://127.0.0.1:1")
    env.setenv("SUPABASE_SERVICE_ROLE_KEY", "secret-key-value")
    result = run(tmp_path, "--upload")
    assert result.exit_code == 1, result.output
    assert "could not be reached" in result.output and "Traceback" not in result.output
    assert "secret-key-value" not in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--expires", "1d"], "give --upload too"),
        (["--upload", "--expires", "soon"], "expected a duration"),
        (["--upload", "--expires", "0s"], "at least 1s"),
        (["--upload", "--expires", "400d"], "at most 365d"),
    ],
)
def test_bad_expires_is_exit_2(
    env: pytest.MonkeyPatch, tmp_path: Path, args: list[str], message: str
) -> None:
    result = run(tmp_path, *args)
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split())


@pytest.mark.parametrize(
    ("report", "message"),
    [
        ({"signed_url_expiry": "0s"}, "report.signed_url_expiry: must be at least 1s"),
        ({"signed_url_expiry": "366d"}, "report.signed_url_expiry: must be at most 365d"),
        ({"bucket": "my/bucket"}, "report.bucket: 'my/bucket' is not a bucket name"),
        ({"public": True}, "report.public: unknown key"),
    ],
)
def test_the_report_section_is_validated(
    tmp_path: Path, report: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError) as refused:
        load_config(config_file(tmp_path, **report))
    assert message in str(refused.value)


def test_the_report_section_defaults() -> None:
    config = make_config()
    assert config.report.bucket == DEFAULT_REPORT_BUCKET
    assert config.report.signed_url_expiry == timedelta(days=7)


def test_a_supabase_url_that_is_not_one_is_exit_2(env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    env.setenv("SUPABASE_URL", "abcdefghijklmnop.supabase.co")
    env.setenv("SUPABASE_SERVICE_ROLE_KEY", "secret-key-value")
    result = run(tmp_path, "--upload")
    assert result.exit_code == 2, result.output
    assert "SUPABASE_URL must be the project's URL" in " ".join(result.output.split())
    assert "secret-key-value" not in result.output


def test_two_uploads_in_one_second_get_two_objects() -> None:
    """Regression: the object was named by the second only, and Storage refuses to overwrite:
    a second upload within that second failed with 409 (seen once in the suite)."""
    from datetime import UTC, datetime

    from agent.report.share import object_path

    now = datetime(2026, 12, 7, 21, 42, 1, tzinfo=UTC)
    first, second = object_path(None, now), object_path(None, now)
    assert first != second
    assert first.startswith("reports/all/20261207T214201Z-")
    assert object_path(["main", "b c"], now).startswith("reports/main-b_c/")
