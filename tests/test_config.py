"""`spillover config check/show`: one line per problem, exit 2, never a traceback."""

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agent.cli import app
from agent.config import Config, ConfigError, load_config

ROOT = Path(__file__).resolve().parents[1]
SIM = ROOT / "config" / "sim.toml"
runner = CliRunner()


def check(path: Path, env: dict[str, str] | None = None):
    return runner.invoke(app, ["config", "check", str(path)], env=env)


def problems(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> list[str]:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    result = check(path, env)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert all(line.startswith(f"{path}: ") for line in lines)
    return [line.removeprefix(f"{path}: ") for line in lines]


def test_shipped_sim_config_is_ok():
    result = check(SIM)
    assert result.exit_code == 0
    assert result.stdout.strip() == "ok"


def test_missing_file_is_one_line(tmp_path):
    result = check(tmp_path / "nope.toml")
    assert result.exit_code == 2
    assert (
        result.stderr.strip() == f"{tmp_path / 'nope.toml'}: cannot read: No such file or directory"
    )


def test_bad_toml_syntax_names_the_line(tmp_path):
    [line] = problems(tmp_path, "[signal]\nvolume_multiple = = 2\n")
    assert line.startswith("invalid TOML:")
    assert "line 2" in line


def test_wrong_type_names_the_key_and_the_value(tmp_path):
    [line] = problems(tmp_path, '[signal]\nvolume_multiple = "lots"\n')
    assert line == "signal.volume_multiple: Input should be a valid number (got 'lots')"


def test_bool_is_not_accepted_for_a_number(tmp_path):
    [line] = problems(tmp_path, "[risk]\nmax_drawdown = true\n")
    assert line.startswith("risk.max_drawdown: Input should be a valid number")


def test_unknown_key_is_rejected(tmp_path):
    assert problems(tmp_path, "[signal]\nvolume_multiplier = 2.0\n") == [
        "signal.volume_multiplier: unknown key"
    ]


def test_unknown_section_is_rejected(tmp_path):
    assert problems(tmp_path, "[signals]\nbuffer = 0.01\n") == ["signals: unknown key"]


def test_secret_in_a_config_file_is_refused_with_where_it_belongs(tmp_path):
    [line] = problems(tmp_path, '[venue]\napi_key = "abc"\n')
    assert line == "venue.api_key: secrets are not config keys: set them in the environment or .env"


def test_out_of_range_value_names_the_key(tmp_path):
    assert problems(tmp_path, "[signal]\nvolume_window = 0\n") == [
        "signal.volume_window: must be > 0, got 0"
    ]


def test_every_problem_gets_its_own_line(tmp_path):
    lines = problems(
        tmp_path, '[signal]\nvolume_window = "x"\nrs_window = "y"\n[venue]\nkind = "live"\n'
    )
    assert len(lines) == 3
    assert lines[2].startswith("venue.kind: Input should be 'paper'")


def test_an_unknown_key_does_not_hide_a_bad_value_beside_it(tmp_path):
    assert problems(tmp_path, "[signal]\nlookbak = 1\nfail_pct = 7\n") == [
        "signal.fail_pct: must be in (0, 1], got 7.0",
        "signal.lookbak: unknown key",
    ]


def test_unknown_keys_do_not_hide_the_checks_across_sections(tmp_path):
    text = "[signal]\nlookbak = 1\n[venue]\nquot = 1\n[risk.asset_caps]\nDOGE = 0.1\n"
    assert problems(tmp_path, text) == [
        "risk.asset_caps.DOGE: not an asset of staging.shares",
        "signal.lookbak: unknown key",
        "venue.quot: unknown key",
    ]


def test_unknown_keys_and_bad_values_everywhere_are_reported_together(tmp_path):
    text = (
        "sgnal = 1\n[staging.shares]\nBTC = 1.0\n"
        '[[staging.stages]]\nday = 0\nbudget = 1.0\nadd = ["BTC"]\nbudgt = 0.5\n'
        '[risk]\nmax_drawdown = "high"\n'
    )
    assert problems(tmp_path, text, env={"SPILLOVER__SIGNAL__BUFFR": "0.01"}) == [
        "risk.max_drawdown: Input should be a valid number (got 'high')",
        "sgnal: unknown key",
        "signal.buffr: unknown key (from SPILLOVER__SIGNAL__BUFFR)",
        "staging.stages[0].budgt: unknown key",
    ]


def test_stage_budgets_must_not_decrease(tmp_path):
    text = (
        "[staging.shares]\nBTC = 1.0\n"
        '[[staging.stages]]\nday = 0\nbudget = 0.6\nadd = ["BTC"]\n'
        "[[staging.stages]]\nday = 30\nbudget = 0.4\n"
    )
    assert problems(tmp_path, text + "[risk.asset_caps]\n") == [
        "staging.stages[1].budget: stage budgets must not decrease (0.4 after 0.6)"
    ]


def test_asset_cap_above_the_total_cap_is_rejected(tmp_path):
    [line] = problems(tmp_path, "[risk]\nmax_total_exposure = 0.4\n[risk.asset_caps]\nBTC = 0.5\n")
    assert line.startswith("risk.asset_caps.BTC: ")


def test_stage_outside_the_lag_window_is_rejected(tmp_path):
    [line] = problems(tmp_path, "[signal]\nwindow_days = 60\n")
    assert line.startswith("staging.stages[2].day: 60 is not inside the lag window")


def test_cap_for_an_asset_the_schedule_does_not_trade_is_rejected(tmp_path):
    assert problems(tmp_path, "[risk.asset_caps]\nDOGE = 0.1\n") == [
        "risk.asset_caps.DOGE: not an asset of staging.shares"
    ]


def test_environment_overrides_a_key():
    config = load_config(SIM, {"SPILLOVER__SIGNAL__VOLUME_MULTIPLE": "1.8"})
    assert config.signal.volume_multiple == 1.8


def test_environment_override_of_a_table_and_a_list():
    env = {
        "SPILLOVER__RISK__ASSET_CAPS__BTC": "0.25",
        "SPILLOVER__STAGING__STAGES": (
            '[{day = 0, budget = 1.0, add = ["BTC", "ETH", "SOL", "XRP"]}]'
        ),
    }
    config = load_config(SIM, env)
    assert config.risk.asset_caps["BTC"] == 0.25
    assert len(config.staging.stages) == 1


def test_bad_environment_override_names_the_variable(tmp_path):
    lines = problems(tmp_path, "", env={"SPILLOVER__RISK__MAX_DRAWDOWN": "high"})
    assert lines == [
        "risk.max_drawdown: Input should be a valid number (got 'high') "
        "(from SPILLOVER__RISK__MAX_DRAWDOWN)"
    ]


def test_misspelt_environment_override_is_an_unknown_key(tmp_path):
    lines = problems(tmp_path, "", env={"SPILLOVER__SIGNAL__BUFFR": "0.01"})
    assert lines == ["signal.buffr: unknown key (from SPILLOVER__SIGNAL__BUFFR)"]


def test_misspelt_section_in_an_environment_override_names_the_variable(tmp_path):
    lines = problems(tmp_path, "", env={"SPILLOVER__SIGNL__VOLUME_MULTIPLE": "1.5"})
    assert lines == ["signl: unknown key (from SPILLOVER__SIGNL__VOLUME_MULTIPLE)"]


def test_misspelt_section_in_the_file_is_not_blamed_on_the_environment(tmp_path):
    env = {"SPILLOVER__SIGNL__BUFFER": "0.01"}
    assert problems(tmp_path, "[signl]\nvolume_multiple = 1.5\n", env) == ["signl: unknown key"]


def test_bad_list_item_from_the_environment_names_the_variable(tmp_path):
    env = {"SPILLOVER__STAGING__STAGES": '[{day = 0, budget = 2.0, add = ["BTC"]}]'}
    [line] = problems(tmp_path, "", env)
    assert line.startswith("staging.stages[0].budget: ")
    assert line.endswith("(from SPILLOVER__STAGING__STAGES)")


def test_show_prints_the_effective_config_which_checks_ok(tmp_path):
    path = tmp_path / "small.toml"
    path.write_text("[signal]\nbuffer = 0.01\n")
    shown = runner.invoke(app, ["config", "show", str(path)])
    assert shown.exit_code == 0
    assert "buffer = 0.01" in shown.stdout
    assert "stale_after = " in shown.stdout
    assert "[[staging.stages]]" in shown.stdout
    effective = tmp_path / "effective.toml"
    effective.write_text(shown.stdout)
    assert load_config(effective, {}) == load_config(path, {})


def test_hash_changes_with_any_value():
    assert load_config(SIM, {}).hash() == load_config(SIM, {}).hash()
    other = load_config(SIM, {"SPILLOVER__RISK__MAX_DRAWDOWN": "0.19"})
    assert other.hash() != load_config(SIM, {}).hash()


def test_empty_file_gives_the_documented_defaults(tmp_path):
    path = tmp_path / "empty.toml"
    path.write_text("")
    assert load_config(path, {}) == Config()


def test_config_error_carries_every_problem(tmp_path):
    path = tmp_path / "two.toml"
    path.write_text('[signal]\nbuffer = "a"\nfail_pct = "b"\n')
    with pytest.raises(ConfigError) as info:
        load_config(path, {})
    assert len(info.value.problems) == 2


@pytest.mark.parametrize("command", [["spillover"], [sys.executable, "-m", "agent"]])
def test_console_script_and_module_both_check_configs(command, tmp_path):
    if command == ["spillover"]:
        command = [str(Path(sys.executable).with_name("spillover"))]
    ok = subprocess.run([*command, "config", "check", str(SIM)], capture_output=True, text=True)
    assert (ok.returncode, ok.stdout) == (0, "ok\n")
    missing = subprocess.run(
        [*command, "config", "check", str(tmp_path / "x.toml")], capture_output=True, text=True
    )
    assert missing.returncode == 2
    assert missing.stderr.count("\n") == 1
    assert "Traceback" not in missing.stderr


def test_every_config_key_is_documented_in_the_readme():
    readme = (ROOT / "README.md").read_text()
    dumped = Config().model_dump(mode="json")
    keys = [f"{section}.{key}" for section, values in dumped.items() for key in values]
    missing = [key for key in keys if f"| `{key}` |" not in readme]
    assert not missing, f"undocumented config keys: {missing}"


TESTNET = """
[data]
source = "alpaca"
crypto_symbol = "{asset}/USDT"
[venue]
kind = "testnet"
"""


@pytest.mark.parametrize(
    ("venue", "expected"),
    [
        ('exchange = "kraken"', "venue.exchange: 'kraken' has no spot testnet here"),
        ('exchange = "coinbase"', "venue.exchange: 'coinbase' has no spot testnet here"),
        ("", "venue.exchange: required: spillover trades only on binance, bybit"),
        (
            'exchange = "binance"\napi_url = "https://api.binance.com"',
            "venue.api_url: must be a loopback URL",
        ),
        (
            'exchange = "binance"\napi_url = "http://127.0.0.1.example.com:8080"',
            "venue.api_url: must be a loopback URL",
        ),
    ],
)
def test_a_venue_that_could_reach_a_live_exchange_is_a_config_error(tmp_path, venue, expected):
    [line] = problems(tmp_path, TESTNET + venue)
    assert line.startswith(expected)


def test_a_live_endpoint_from_the_environment_is_refused_too(tmp_path):
    env = {"SPILLOVER__VENUE__API_URL": "https://api.bybit.com"}
    [line] = problems(tmp_path, TESTNET + 'exchange = "bybit"', env)
    assert line.startswith("venue.api_url: must be a loopback URL")
    assert line.endswith("(from SPILLOVER__VENUE__API_URL)")


def test_live_data_needs_the_testnet_venue_and_replayed_data_the_paper_one(tmp_path):
    [line] = problems(tmp_path, '[data]\nsource = "alpaca"\n')
    assert line.startswith("data.source: alpaca (live bars) goes with venue.kind = testnet")
    [line] = problems(tmp_path, '[venue]\nkind = "testnet"\nexchange = "binance"\n')
    assert line.startswith("data.source:")


@pytest.mark.parametrize("name", ["testnet-binance.toml", "testnet-bybit.toml", "history.toml"])
def test_shipped_configs_are_valid(name):
    result = check(ROOT / "config" / name)
    assert result.exit_code == 0, result.output
    assert result.stdout == "ok\n"
