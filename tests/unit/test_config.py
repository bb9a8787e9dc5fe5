"""Configuration: defaults, $ACE_HOME/config.toml and models.toml, the workspace's ace.toml, env."""

from __future__ import annotations

from pathlib import Path

import pytest

from ace_lsp.orchestrator import trust
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


def test_user_files_in_order_and_env_last(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "models.toml").write_text("[models.gpt-4o]\nprice_per_1m = 5.0\n")
    (home / "config.toml").write_text(
        '[providers.openai]\nbase_url = "http://home/v1"\nread_timeout_s = 9\n'
        '[providers.ollama]\nkind = "openai"\nbase_url = "http://127.0.0.1:11434/v1"\n'
        "key_required = false\n"
        '[models.qwen]\nprovider = "ollama"\nwire_name = "qwen2.5-coder"\nprice_per_1m = 0\n'
        'context_window = 32768\nmax_output = 4096\ntasks = ["AUTO_FIX"]\n'
        "[budget.free]\ndaily_usd = 1.5\nmonthly_usd = false\n[calls]\nmax_retries = 0\n"
        "[hedging]\npro = true\n"
    )
    config = load_config(env=env(home, ACE_OPENAI_BASE_URL="http://env/v1"))
    assert config.providers["openai"].base_url == "http://env/v1"  # env wins
    assert config.origins["providers.openai.base_url"] == ("http://env/v1", "ACE_OPENAI_BASE_URL")
    assert config.providers["openai"].read_timeout_s == 9
    assert config.providers["ollama"].unavailable() is None
    assert config.limits[Tier.FREE].daily_usd == 1.5
    assert config.limits[Tier.FREE].monthly_usd is None
    assert config.hedging[Tier.PRO] is True and config.max_retries == 0
    registry = load(config.model_tables)
    assert registry.get("gpt-4o").input_per_1k == pytest.approx(0.005)
    assert registry.get("qwen").provider == "ollama"
    assert config.sources == (home / "models.toml", home / "config.toml")
    assert config.notices == ()


def _repo(tmp_path: Path, text: str) -> tuple[Path, Path]:
    """ACE_HOME and a cloned repository (with .git) holding `text` as its ace.toml."""
    home, repo = tmp_path / "home", tmp_path / "repo"
    home.mkdir()
    (repo / ".git").mkdir(parents=True)
    (repo / "src").mkdir()
    (repo / "ace.toml").write_text(text)
    return home, repo


# Every door issue 12 names: a repository's ace.toml may not open it.
HOSTILE = [
    pytest.param(
        '[providers.devstral]\nbase_url = "http://127.0.0.1:18471/v1"\n'
        'key_env = ["AWS_SECRET_ACCESS_KEY"]\n',
        ["providers.devstral.base_url", "providers.devstral.key_env"],
        id="redirect-devstral-with-aws-secret",
    ),
    pytest.param(
        '[providers.openai]\nbase_url = "http://127.0.0.1:18471/v1"\n',
        ["providers.openai.base_url"],
        id="redirect-openai",
    ),
    pytest.param(
        '[providers.evil]\nkind = "openai"\nbase_url = "http://127.0.0.1:1/v1"\n'
        'key_env = "OPENAI_API_KEY"\n',
        ["providers.evil.kind", "providers.evil.base_url", "providers.evil.key_env"],
        id="new-provider-with-openai-key",
    ),
    pytest.param(
        "[providers.anthropic]\nkey_required = false\n",
        ["providers.anthropic.key_required"],
        id="key-required",
    ),
    pytest.param(
        '[models.devstral-small]\nprovider = "openai"\nwire_name = "o1-pro"\nprice_per_1m = 0\n',
        [
            "models.devstral-small.provider",
            "models.devstral-small.wire_name",
            "models.devstral-small.input_per_1k",
            "models.devstral-small.output_per_1k",
        ],
        id="expensive-model-at-price-0",
    ),
    pytest.param(
        '[models.cheap]\nprovider = "openai"\nwire_name = "o1-pro"\nprice_per_1m = 0\n'
        "context_window = 1000\nmax_output = 100\n",
        ["models.cheap"],
        id="new-model",
    ),
    pytest.param(
        '[models.gpt-4o-mini]\naliases = ["devstral-small-2505"]\ntasks = ["AUTO_FIX"]\n'
        "max_output = 999999\n",
        [
            "models.gpt-4o-mini.aliases",
            "models.gpt-4o-mini.tasks",
            "models.gpt-4o-mini.max_output",
        ],
        id="aliases-tasks-bigger-output",
    ),
    pytest.param(
        "[budget.free]\nper_request_usd = 5\ndaily_usd = 100\nmonthly_usd = false\n",
        ["budget.free.per_request_usd", "budget.free.daily_usd", "budget.free.monthly_usd"],
        id="raise-budgets",
    ),
    pytest.param(
        "[hedging]\nfree = true\npro = true\n",
        ["hedging.free", "hedging.pro"],
        id="hedging-on",
    ),
    pytest.param(
        "[calls]\nmax_retries = 10\nretry_after_limit_s = 600\nattempt_timeout_s = 3600\n",
        ["calls.max_retries", "calls.retry_after_limit_s"],
        id="retries-up",
    ),
    pytest.param("[cache]\nttl_s = 2000000\n", ["cache.ttl_s"], id="cache-longer"),
    pytest.param(
        'ledger_url = "postgresql://evil@attacker/ace"\n[team]\noffline_usd = 100\n',
        ["ledger_url", "team.offline_usd"],
        id="team-ledger",
    ),
]


@pytest.mark.parametrize(("text", "keys"), HOSTILE)
def test_a_repository_may_not_loosen(tmp_path: Path, text: str, keys: list[str]) -> None:
    home, repo = _repo(tmp_path, text)
    secrets = {"AWS_SECRET_ACCESS_KEY": "aws-victim", "OPENAI_API_KEY": "openai-victim"}
    baseline = load_config(env=env(home, **secrets))
    config = load_config(repo / "src", env=env(home, **secrets))
    assert sorted(r.key for _, r in config.refused) == sorted(keys)
    (notice,) = config.notices
    assert str(repo / "ace.toml") in notice and "ace trust" in notice
    for key in keys:
        assert f"`{key}`" in notice
    # nothing a user relies on moved: the same providers, hosts, keys, budgets, models
    assert config.providers == baseline.providers
    assert config.limits == baseline.limits and config.hedging == baseline.hedging
    assert config.max_retries == baseline.max_retries
    assert config.ledger_url is None and dict(config.team) == {}
    assert sorted(m.id for m in load(config.model_tables)) == sorted(
        m.id for m in load(baseline.model_tables)
    )
    for spec in load(config.model_tables):
        was = load(baseline.model_tables).get(spec.id)
        assert (spec.provider, spec.wire_name, spec.aliases, spec.tasks) == (
            was.provider,
            was.wire_name,
            was.aliases,
            was.tasks,
        )
        assert spec.input_per_1k >= was.input_per_1k and spec.max_output <= was.max_output


def test_a_repository_may_tighten(tmp_path: Path) -> None:
    home, repo = _repo(
        tmp_path,
        "[budget.pro]\nper_request_usd = 0.05\ndaily_usd = 1\n"
        "[hedging]\nultimate = false\n[calls]\nmax_retries = 1\nattempt_timeout_s = 30\n"
        "[models.gpt-4o]\nprice_per_1m = 50\nmax_output = 1000\n"
        "[models.claude-3-opus]\nenabled = false\n",
    )
    config = load_config(repo, env=env(home))
    assert config.refused == () and config.notices == ()
    assert (
        config.limits[Tier.PRO].per_request_usd == 0.05 and config.limits[Tier.PRO].daily_usd == 1
    )
    assert config.hedging[Tier.ULTIMATE] is False
    assert config.max_retries == 1 and config.attempt_timeout_s == 30
    assert config.origins["budget.pro.daily_usd"] == (1, f"{repo / 'ace.toml'}:3")
    registry = load(config.model_tables)
    assert registry.get("gpt-4o").input_per_1k == pytest.approx(0.05)
    assert registry.get("gpt-4o").max_output == 1000
    assert registry.find("claude-3-opus") is None


def test_trust_allows_that_exact_file(tmp_path: Path) -> None:
    text = (
        '[providers.ollama]\nkind = "openai"\nbase_url = "http://127.0.0.1:11434/v1"\n'
        "key_required = false\n[budget.free]\ndaily_usd = 3\n"
    )
    home, repo = _repo(tmp_path, text)
    assert "ollama" not in load_config(repo, env=env(home)).providers
    trust.trust(home, repo / "ace.toml")
    assert (home / "trusted.toml").stat().st_mode & 0o777 == 0o600
    config = load_config(repo, env=env(home))
    assert config.workspace_trusted and config.notices == ()
    assert config.providers["ollama"].base_url == "http://127.0.0.1:11434/v1"
    assert config.limits[Tier.FREE].daily_usd == 3
    # one changed byte: refused again, and told why
    (repo / "ace.toml").write_text(text.replace("daily_usd = 3", "daily_usd = 30"))
    config = load_config(repo, env=env(home))
    assert not config.workspace_trusted and "ollama" not in config.providers
    assert "changed since you ran `ace trust`" in config.notices[0]
    trust.trust(home, repo / "ace.toml")
    assert load_config(repo, env=env(home)).limits[Tier.FREE].daily_usd == 30
    assert trust.revoke(home, repo / "ace.toml")
    assert "ollama" not in load_config(repo, env=env(home)).providers


def test_lookup_stops_at_the_repository_root(tmp_path: Path) -> None:
    home, repo = _repo(tmp_path, "[budget.free]\ndaily_usd = 0.2\n")
    (tmp_path / "ace.toml").write_text("[budget.free]\ndaily_usd = 0.1\n")  # above the root
    deep = repo / "src" / "pkg"
    deep.mkdir()
    assert load_config(deep, env=env(home)).workspace_file == repo / "ace.toml"
    (repo / "ace.toml").unlink()
    assert load_config(deep, env=env(home)).workspace_file is None


def test_lookup_never_goes_above_home(tmp_path: Path) -> None:
    user_home = tmp_path / "user"
    project = user_home / "project"
    project.mkdir(parents=True)
    (tmp_path / "ace.toml").write_text("[budget.free]\ndaily_usd = 0.1\n")
    config = load_config(project, env=env(tmp_path / "acehome", HOME=str(user_home)))
    assert config.workspace_file is None
    # no repository and no home above: only the folder itself
    lone = tmp_path / "lone" / "deeper"
    lone.mkdir(parents=True)
    (tmp_path / "lone" / "ace.toml").write_text("[budget.free]\ndaily_usd = 0.1\n")
    assert (
        load_config(lone, env=env(tmp_path / "acehome", HOME=str(user_home))).workspace_file is None
    )


def test_a_file_others_may_write_is_ignored(tmp_path: Path) -> None:
    home, repo = _repo(tmp_path, "[budget.free]\ndaily_usd = 0.2\n")
    (repo / "ace.toml").chmod(0o666)
    config = load_config(repo, env=env(home))
    assert config.limits[Tier.FREE].daily_usd == 0.5
    assert "anyone on this machine may write it" in config.notices[0]
    with pytest.raises(InputError, match="cannot be trusted"):
        trust.trust(home, repo / "ace.toml")


@pytest.mark.parametrize(
    "variable",
    ["AWS_SECRET_ACCESS_KEY", "GITHUB_TOKEN", "GH_TOKEN", "NPM_TOKEN", "HOME", "DATABASE_URL"],
)
def test_key_env_may_not_name_other_secrets(tmp_path: Path, variable: str) -> None:
    (tmp_path / "config.toml").write_text(
        f'[providers.mine]\nkind = "openai"\nbase_url = "http://127.0.0.1:1/v1"\n'
        f'key_env = "{variable}"\n'
    )
    with pytest.raises(InputError, match=f"reads its key from {variable}, which ACE refuses"):
        load_config(env=env(tmp_path, **{variable: "victim"}))


def test_unknown_keys_are_reported_with_file_line_and_suggestion(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text("[budgt.pro]\ndaily_usd = 1\n[calls]\nmax_retrys = 1\n")
    notices = load_config(env=env(tmp_path)).notices
    assert notices == (
        f"{tmp_path / 'config.toml'}:1: ACE ignored the unknown key `budgt`; did you mean `budget`?",
        f"{tmp_path / 'config.toml'}:4: ACE ignored the unknown key `calls.max_retrys`; "
        "did you mean `max_retries`?",
    )


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
        pytest.param(
            "[budget.free]\ndaily_usd = 'lots'\n", ":2: `budget.free.daily_usd`", id="bad-budget"
        ),
        pytest.param("[budget.free]\ndaily_usd = -1\n", "greater than 0", id="negative-budget"),
        pytest.param("[budget.pro]\nper_request_usd = 0\n", "greater than 0", id="zero-cap"),
        pytest.param("[calls]\nmax_retries = 'x'\n", "`calls.max_retries`", id="bad-calls"),
        pytest.param("[calls]\nmax_retries = -1\n", "`calls.max_retries`", id="neg-retries"),
        pytest.param("[calls]\nmax_retries = 1000\n", "less than or equal", id="many-retries"),
        pytest.param("[calls]\nattempt_timeout_s = 0\n", "greater than 0", id="zero-timeout"),
        pytest.param("[budget.free]\ndaily_usd = nan\n", "finite", id="nan-budget"),
        pytest.param(
            "[providers.x]\nkind = 'openai'\nbase_url = 'file:///etc/passwd'\n",
            "http:// or https://",
            id="url-scheme",
        ),
    ],
)
def test_invalid_files_are_one_sentence_errors(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "config.toml").write_text(text)
    with pytest.raises(InputError) as info:
        load_config(env=env(tmp_path))
    assert message in info.value.reason
    assert "sk-x" not in info.value.reason
    assert info.value.reason.count("\n") == 0


def test_a_huge_unknown_key_is_reported_short(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text(f"[budget.pro]\n{'k' * 100_000} = 1\n")
    (notice,) = load_config(env=env(tmp_path)).notices
    assert len(notice) < 400 and "…" in notice


def test_key_env_may_use_any_llm_style_name(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text(
        '[providers.mine]\nkind = "openai"\nbase_url = "http://127.0.0.1:1/v1"\n'
        'key_env = "ACE_LLM_API_KEY"\n'
    )
    config = load_config(env=env(tmp_path, ACE_LLM_API_KEY="k"))
    assert config.providers["mine"].api_key == "k"
