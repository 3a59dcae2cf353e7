"""Config loading: every error names its key path; unknown keys are errors; secrets from env."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from agent.config import check_account_secrets, load_config, parse_duration
from agent.errors import ConfigError
from tests.conftest import EXAMPLE_CONFIG, example_raw, make_config


def write(tmp_path: Path, raw: object) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_example_config_is_valid_and_has_real_catalogues() -> None:
    config = load_config(EXAMPLE_CONFIG)
    arms = config.catalogues.arms()
    assert len(arms["content_type"]) >= 6
    assert len(arms["formula"]) >= 5
    assert len(arms["hook"]) >= 8
    descriptions = [e.description for e in config.catalogues.hooks]
    assert len(set(descriptions)) == len(descriptions)
    assert config.polling.horizons == [timedelta(hours=h) for h in (1, 4, 24)]


def test_unknown_key_is_an_error_naming_its_path(tmp_path: Path) -> None:
    raw = example_raw()
    raw["cadence"]["posts_per_dya"] = 3
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, raw))
    assert "cadence.posts_per_dya: unknown key" in str(err.value)


def test_bad_value_names_the_indexed_key_path(tmp_path: Path) -> None:
    raw = example_raw()
    raw["accounts"][0]["cadence"] = {"posts_per_day": 0}
    raw["polling"]["horizons"] = ["1h", "soon"]
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, raw))
    text = str(err.value)
    assert "accounts[0].cadence.posts_per_day: Input should be greater than 0" in text
    assert "polling.horizons[1]: expected a duration" in text
    assert "2 problems" in text


def test_invalid_yaml_and_missing_file_are_config_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("accounts: [\n  - name: x\n")
    with pytest.raises(ConfigError, match="not valid YAML at line"):
        load_config(bad)
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")


def test_unknown_time_zone_and_duplicate_arms_are_rejected() -> None:
    with pytest.raises(Exception, match="unknown time zone"):
        make_config(cadence={"active_hours": {"timezone": "Mars/Olympus"}})
    raw = example_raw()
    raw["catalogues"]["hooks"].append(dict(raw["catalogues"]["hooks"][0]))
    from agent.config import Config

    with pytest.raises(Exception, match="duplicate arm names"):
        Config.model_validate(raw)


@pytest.mark.parametrize(
    ("text", "seconds"), [("90m", 5400), ("4h", 14400), ("1d", 86400), ("30s", 30), (2.5, 2.5)]
)
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


def test_missing_platform_secret_names_account_and_variables() -> None:
    raw = example_raw()
    raw["accounts"][0]["platform"] = "x"
    from agent.config import Config

    config = Config.model_validate(raw)
    with pytest.raises(ConfigError) as err:
        check_account_secrets(config, environ={})
    assert "accounts[0] ('demo', platform x)" in str(err.value)
    assert "DEMO_X_API_KEY" in str(err.value)
    env = {f"DEMO_X_{k}": "v" for k in ("API_KEY", "API_SECRET", "ACCESS_TOKEN")}
    env["DEMO_X_ACCESS_TOKEN_SECRET"] = "v"
    check_account_secrets(config, environ=env)  # complete: no error


def test_example_config_embeds_exactly_the_catalogue_file() -> None:
    catalogue_file = yaml.safe_load((EXAMPLE_CONFIG.parent / "catalogues.yaml").read_text())
    assert example_raw()["catalogues"] == catalogue_file["catalogues"]


def test_the_joint_learners_settings_reach_the_policy() -> None:
    from agent.learner import build_policy
    from learning.policies import Joint

    default = build_policy(make_config())
    assert isinstance(default, Joint)
    assert (default.negbin, default.carry_auxiliary, default.exploration) == (True, True, 0.6)
    tuned = build_policy(
        make_config(
            learning={"negative_binomial": False, "carry_auxiliary": False, "exploration": 0.5}
        )
    )
    assert isinstance(tuned, Joint)
    assert (tuned.negbin, tuned.carry_auxiliary, tuned.exploration) == (False, False, 0.5)


def test_relative_paths_in_a_config_file_resolve_against_its_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    folder.mkdir()
    elsewhere.mkdir()
    (folder / "busy.yaml").write_text("extends: default\n")
    raw = example_raw()
    raw["sandbox"]["scenario"] = "./busy.yaml"
    raw["runtime"] = {"journal_path": "state/journal.jsonl"}
    del raw["sandbox"]["world_path"]  # a default is relative to the folder too
    monkeypatch.chdir(elsewhere)
    config = load_config(write(folder, raw))
    assert config.store.sqlite_path == folder / "data" / "growthloop.db"
    assert config.sandbox.world_path == folder / "data" / "sandbox-world.db"
    assert config.runtime.journal_path == folder / "state" / "journal.jsonl"
    assert config.sandbox.scenario == str(folder / "busy.yaml")
    absolute = tmp_path / "abs.db"
    raw["store"]["sqlite_path"] = str(absolute)
    assert load_config(write(folder, raw)).store.sqlite_path == absolute


def test_the_built_in_config_keeps_its_data_under_the_working_directory() -> None:
    for config in (load_config(None), load_config(EXAMPLE_CONFIG)):
        assert config.store.sqlite_path == Path("data/growthloop.db")
        assert config.runtime.journal_path == Path("data/publish-journal.jsonl")
        assert config.sandbox.scenario == "default"


def test_unknown_scenario_name_is_an_error_listing_the_shipped_ones(tmp_path: Path) -> None:
    raw = example_raw()
    raw["sandbox"]["scenario"] = "stationnary"
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, raw))
    assert "sandbox.scenario: unknown scenario 'stationnary'" in str(err.value)
    assert "stationary" in str(err.value).split("stationnary", 1)[1]


def test_retired_learning_discount_is_refused_unless_it_is_the_old_default() -> None:
    """learning.discount drove the per-arm Gamma update that issue 14 removed: a value that would
    have forgotten evidence must not be silently ignored."""
    assert make_config(learning={"discount": 1.0}).learning.discount == 1.0
    with pytest.raises(ValidationError, match="half_life_days"):
        make_config(learning={"discount": 0.99})


def test_interaction_pairs_become_the_joint_policys_pairs(tmp_path: Path) -> None:
    from agent.learner import joint_policy

    assert joint_policy(make_config()).interaction == ("formula", "hook")
    every = [["content_type", "formula"], ["content_type", "hook"], ["formula", "hook"]]
    policy = joint_policy(make_config(learning={"interaction_pairs": every}))
    assert policy.interaction == (
        ("content_type", "formula"),
        ("content_type", "hook"),
        ("formula", "hook"),
    )
    raw = example_raw()
    raw["learning"]["interaction_pairs"] = [["hook", "hook"]]
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, raw))
    assert "learning.interaction_pairs" in str(err.value)
    assert "two different dimensions" in str(err.value)


@pytest.mark.parametrize(
    ("section", "key", "value"),
    [
        ("runtime", "tick", "0s"),  # accepted before, and the daemon busy-looped
        ("runtime", "shutdown_grace", -1),
        ("runtime", "publish_retry_after", "0m"),
        ("runtime", "lease", 0),
        ("polling", "account_every", "0s"),
        ("polling", "horizons", ["1h", 0]),
        ("learning", "attribution_window", "0h"),
        ("generator", "timeout", 0),
        ("approval", "draft_expiry", "0h"),
        ("cadence", "min_gap", -60),
        ("cadence", "jitter", -1),
    ],
)
def test_zero_or_negative_intervals_are_refused_naming_the_key(
    tmp_path: Path, section: str, key: str, value: object
) -> None:
    raw = example_raw()
    raw.setdefault(section, {})[key] = value
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, raw))
    assert f"{section}.{key}" in str(err.value)
    assert "1 problem:" in str(err.value)


def test_a_zero_gap_and_jitter_are_allowed() -> None:
    config = make_config(cadence={"min_gap": "0s", "jitter": 0})
    assert config.cadence.min_gap == timedelta(0) == config.cadence.jitter


def test_prompt_versions_are_checked_with_their_key_path(tmp_path: Path) -> None:
    raw = example_raw()
    raw["generator"] = {**raw.get("generator", {}), "prompts": {"concrete": "Be concrete."}}
    raw["generator"]["prompt"] = "concrete"
    config = load_config(write(tmp_path, raw))
    assert config.generator.instructions("concrete") == "Be concrete."
    assert config.generator.instructions("default") == ""
    raw["generator"]["prompt"] = "nope"
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, raw))
    assert "generator" in str(err.value) and "unknown prompt version 'nope'" in str(err.value)
    raw["generator"] = {"prompts": {"default": "x"}}
    with pytest.raises(ConfigError, match="'default' is the built-in prompt"):
        load_config(write(tmp_path, raw))
