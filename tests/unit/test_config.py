"""Configuration: defaults, $ACE_HOME/config.toml and models.toml, the workspace's ace.toml, env."""

from __future__ import annotations

from pathlib import Path

import pytest

from ace_lsp.orchestrator.config import load_config
from ace_lsp.orchestrator.errors import InputError
from ace_lsp.orchestrator.registry import load
from ace_lsp.orchestrator.types import Tier


def env(home: Path, **more: str) -> dict[str, str]:
    return {"ACE_HOME": str(home), **more}


def test_defaults_without_files_or_keys(tmp_path: Path) -> None:
    config = load_config(env=env(tmp_path))
    openai = config.providers["openai"]
    assert openai.base_url == "https://api.openai.com/v1" and openai.api_key is None
    assert openai.unavailable() == "openai needs an API key: set OPENAI_API_KEY."
    assert config.providers["gemini"].unavailable() == (
        "gemini needs an API key: set GOOGLE_AI_API_KEY or GEMINI_API_KEY."
    )
    assert config.providers["local"].unavailable() is None
    assert config.providers["anthropic"].base_url == "https://api.anthropic.com"
    assert config.limits[Tier.FREE].per_request_usd == 0.01
    assert config.limits[Tier.PRO].per_request_usd == 0.10
    assert config.limits[Tier.ULTIMATE].per_request_usd == 1.00
    assert config.ledger_path == tmp_path / "ledger.sqlite3"


@pytest.mark.parametrize(
    ("variables", "provider", "base_url", "has_key"),
    [
        pytest.param(
            {"OPENAI_API_KEY": "k"}, "openai", "https://api.openai.com/v1", True, id="openai"
        ),
        pytest.param({"GEMINI_API_KEY": "k"}, "gemini", None, True, id="gemini-alt-name"),
        pytest.param({"GOOGLE_AI_API_KEY": "k"}, "gemini", None, True, id="gemini"),
        pytest.param(
            {"MISTRAL_API_KEY": "k"}, "devstral", None, True, id="devstral-uses-mistral-key"
        ),
        pytest.param(
            {"ACE_OPENAI_BASE_URL": "http://127.0.0.1:11434/v1/"},
            "openai",
            "http://127.0.0.1:11434/v1",
            False,
            id="openai-base-url",
        ),
        pytest.param(
            {"ACE_MISTRAL_BASE_URL": "http://m/v1"},
            "devstral",
            "http://m/v1",
            False,
            id="mistral-base-url-serves-devstral",
        ),
        pytest.param(
            {"ACE_ANTHROPIC_BASE_URL": "http://a"}, "anthropic", "http://a", False, id="anthropic"
        ),
        pytest.param(
            {"ACE_GEMINI_BASE_URL": "http://g"}, "gemini", "http://g", False, id="gemini-url"
        ),
    ],
)
def test_environment(
    tmp_path: Path, variables: dict[str, str], provider: str, base_url: str | None, has_key: bool
) -> None:
    settings = load_config(env=env(tmp_path, **variables)).providers[provider]
    assert (settings.api_key is not None) is has_key
    if base_url is not None:
        assert settings.base_url == base_url


def test_files_in_order_and_env_last(tmp_path: Path) -> None:
    home, workspace = tmp_path / "home", tmp_path / "ws"
    home.mkdir()
    workspace.mkdir()
    (home / "config.toml").write_text(
        '[providers.openai]\nbase_url = "http://home/v1"\nread_timeout_s = 9\n'
        "[budget.free]\ndaily_usd = 1.5\n[calls]\nmax_retries = 0\n"
    )
    (home / "models.toml").write_text("[models.gpt-4o]\nprice_per_1m = 5.0\n")
    (workspace / "ace.toml").write_text(
        '[providers.ollama]\nkind = "openai"\nbase_url = "http://127.0.0.1:11434/v1"\n'
        "key_required = false\n"
        '[models.qwen]\nprovider = "ollama"\nwire_name = "qwen2.5-coder"\nprice_per_1m = 0\n'
        'context_window = 32768\nmax_output = 4096\ntasks = ["AUTO_FIX"]\n'
        "[budget.free]\nmonthly_usd = false\n[hedging]\npro = true\n"
    )
    config = load_config(workspace, env=env(home, ACE_OPENAI_BASE_URL="http://env/v1"))
    assert config.providers["openai"].base_url == "http://env/v1"  # env wins
    assert config.providers["openai"].read_timeout_s == 9
    assert config.providers["ollama"].unavailable() is None
    assert (
        config.limits[Tier.FREE].daily_usd == 1.5 and config.limits[Tier.FREE].monthly_usd is None
    )
    assert config.hedging[Tier.PRO] is True and config.max_retries == 0
    registry = load(config.model_tables)
    assert registry.get("gpt-4o").input_per_1k == pytest.approx(0.005)
    assert registry.get("qwen").provider == "ollama"
    assert config.sources == (home / "models.toml", home / "config.toml", workspace / "ace.toml")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param(
            '[providers.openai]\napi_key = "sk-x"\n',
            "keys belong in the environment",
            id="key-in-file",
        ),
        pytest.param("[providers.x]\nbase_url = 'http://x'\n", "needs `kind`", id="no-kind"),
        pytest.param("[providers\n", "is not valid TOML", id="bad-toml"),
        pytest.param("[budget.free]\ndaily_usd = 'lots'\n", "[budget.free]", id="bad-budget"),
        pytest.param("[calls]\nmax_retries = 'x'\n", "[calls]", id="bad-calls"),
        pytest.param("[hedging]\ngold = true\n", "unknown tier 'gold'", id="bad-tier"),
    ],
)
def test_invalid_files_are_one_sentence_errors(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "config.toml").write_text(text)
    with pytest.raises(InputError) as info:
        load_config(env=env(tmp_path))
    assert message in info.value.reason
    assert "sk-x" not in info.value.reason
