"""The model registry: the packaged models and prices, names, and merging a user's tables."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from ace_lsp.orchestrator.compat import tomllib
from ace_lsp.orchestrator.config import load_config
from ace_lsp.orchestrator.errors import InputError
from ace_lsp.orchestrator.registry import ModelSpec, Registry, load, load_default, parse
from ace_lsp.orchestrator.routing import load_routing
from ace_lsp.orchestrator.types import TaskType


def _raw_models() -> dict[str, Any]:
    text = resources.files("ace_lsp.orchestrator.data").joinpath("models.toml").read_text("utf-8")
    models: dict[str, Any] = tomllib.loads(text)["models"]
    return models


# id, provider instance, wire name, the seed's "Cost/1K" figure (USD per 1M input tokens)
SEED_MODELS = [
    pytest.param("mistral-small", "mistral", "mistral-small-latest", 0.10, id="mistral-small"),
    pytest.param("devstral-small", "devstral", "devstral-small-2505", 0.10, id="devstral-small"),
    pytest.param("codestral", "devstral", "codestral-latest", 0.30, id="codestral"),
    pytest.param("gpt-4o-mini", "openai", "gpt-4o-mini", 0.15, id="gpt-4o-mini"),
    pytest.param("gpt-4o", "openai", "gpt-4o", 2.50, id="gpt-4o"),
    pytest.param("claude-3-haiku", "anthropic", "claude-3-haiku-20240307", 0.25, id="haiku"),
    pytest.param("claude-3-5-sonnet", "anthropic", "claude-3-5-sonnet-20241022", 3.00, id="sonnet"),
    pytest.param("claude-3-opus", "anthropic", "claude-3-opus-20240229", 15.00, id="opus"),
    pytest.param("gemini-1.5-flash", "gemini", "gemini-1.5-flash", 0.075, id="gemini-flash"),
]

# id, provider instance, wire name, vendor's input and output USD per 1M tokens
OTHER_MODELS = [
    pytest.param("gemini-1.5-pro", "gemini", "gemini-1.5-pro", 1.25, 5.00, id="gemini-pro"),
    pytest.param("mistral-large", "mistral", "mistral-large-2411", 2.00, 6.00, id="mistral-large"),
    pytest.param(
        "devstral-medium", "devstral", "devstral-medium-2507", 0.40, 2.00, id="devstral-medium"
    ),
    pytest.param("gemini-2.0-flash", "gemini", "gemini-2.0-flash", 0.10, 0.40, id="gemini-2-flash"),
]

# id -> (context window, max output)
LIMITS = {
    "mistral-small": (131_072, 131_072),
    "mistral-large": (131_072, 131_072),
    "devstral-small": (131_072, 131_072),
    "codestral": (262_144, 262_144),
    "devstral-medium": (131_072, 131_072),
    "gpt-4o-mini": (128_000, 16_384),
    "gpt-4o": (128_000, 16_384),
    "claude-3-haiku": (200_000, 4_096),
    "claude-3-5-sonnet": (200_000, 8_192),
    "claude-3-opus": (200_000, 4_096),
    "gemini-1.5-flash": (1_048_576, 8_192),
    "gemini-1.5-pro": (2_097_152, 8_192),
    "gemini-2.0-flash": (1_048_576, 8_192),
    "local": (1_000_000, 1_000_000),
}


def test_thirteen_models_over_five_providers_plus_local() -> None:
    registry = load_default()
    assert set(registry.ids()) == set(LIMITS)
    vendors = [m for m in registry if m.provider != "local"]
    assert len(vendors) == 13
    assert {m.provider for m in vendors} == {"mistral", "devstral", "openai", "anthropic", "gemini"}
    assert registry.providers() == ("anthropic", "devstral", "gemini", "local", "mistral", "openai")


@pytest.mark.parametrize(("model_id", "provider", "wire", "figure"), SEED_MODELS)
def test_seed_models_carry_the_seed_figure_per_1m_for_input_and_output(
    model_id: str, provider: str, wire: str, figure: float
) -> None:
    raw = _raw_models()[model_id]
    assert raw["price_per_1m"] == figure, "the seed's figure, verbatim, as price_per_1m"
    assert not {"input_per_1m", "output_per_1m", "input_per_1k", "output_per_1k"} & set(raw)
    spec = load_default().get(model_id)
    assert (spec.provider, spec.wire_name) == (provider, wire)
    assert spec.input_per_1k == figure / 1000
    assert spec.output_per_1k == figure / 1000


@pytest.mark.parametrize(("model_id", "provider", "wire", "inp", "out"), OTHER_MODELS)
def test_other_models_carry_their_vendors_input_and_output_prices(
    model_id: str, provider: str, wire: str, inp: float, out: float
) -> None:
    spec = load_default().get(model_id)
    assert (spec.provider, spec.wire_name) == (provider, wire)
    assert (spec.input_per_1k, spec.output_per_1k) == (inp / 1000, out / 1000)


@pytest.mark.parametrize(
    ("model_id", "limits"), [pytest.param(k, v, id=k) for k, v in LIMITS.items()]
)
def test_context_windows_and_max_output(model_id: str, limits: tuple[int, int]) -> None:
    spec = load_default().get(model_id)
    assert (spec.context_window, spec.max_output) == limits


def test_local_entry_is_unchanged() -> None:
    assert load_default().get("local") == ModelSpec(
        "local", "local", "ruff", 0.0, 0.0, 1_000_000, 1_000_000, ("AUTO_FIX",), ("ruff",)
    )


def test_every_model_has_tasks_that_are_task_types() -> None:
    values = {t.value for t in TaskType}
    for spec in load_default():
        assert spec.tasks, spec.id
        assert set(spec.tasks) <= values, spec.id


@pytest.mark.parametrize(
    ("tokens_in", "tokens_out", "model_id", "cap"),
    [
        # the reason prices are read per 1M: the seed's Free-tier models fit its $0.01 cap
        pytest.param(3000, 1000, "devstral-small", 0.01, id="free-autofix-devstral"),
        pytest.param(3000, 1000, "claude-3-haiku", 0.01, id="free-chat-haiku"),
        pytest.param(3000, 1000, "mistral-small", 0.01, id="free-planning-mistral"),
        pytest.param(8000, 2000, "claude-3-5-sonnet", 0.10, id="pro-review-sonnet"),
        pytest.param(8000, 2000, "claude-3-opus", 1.00, id="ultimate-analysis-opus"),
    ],
)
def test_seed_routes_fit_their_tier_caps(
    tokens_in: int, tokens_out: int, model_id: str, cap: float
) -> None:
    assert 0 < load_default().get(model_id).cost(tokens_in, tokens_out) <= cap


def test_cost_uses_both_prices() -> None:
    spec = load_default().get("gemini-1.5-pro")
    assert spec.cost(1000, 1000) == pytest.approx((1.25 + 5.00) / 1000)
    assert spec.cost(1_000_000, 0) == pytest.approx(1.25)


@pytest.mark.parametrize(
    ("name", "model_id"),
    [
        # the seed's "Supported Models" names
        pytest.param("mistral-small-latest", "mistral-small", id="mistral-small-latest"),
        pytest.param("devstral-small-2505", "devstral-small", id="devstral-small-2505"),
        pytest.param("codestral-latest", "codestral", id="codestral-latest"),
        pytest.param("claude-3-5-sonnet", "claude-3-5-sonnet", id="claude-3-5-sonnet"),
        pytest.param("gemini-1.5-flash", "gemini-1.5-flash", id="gemini-1.5-flash"),
        # the seed's routing text
        pytest.param("devstral-small", "devstral-small", id="devstral-small"),
        pytest.param("mistral-small", "mistral-small", id="mistral-small"),
        pytest.param("claude-3.5-sonnet", "claude-3-5-sonnet", id="claude-3.5-sonnet"),
        # the seed's strategy table, as written (names compare case-insensitively)
        pytest.param("DevStral", "devstral-small", id="DevStral"),
        pytest.param("Claude Sonnet", "claude-3-5-sonnet", id="Claude Sonnet"),
        pytest.param("Claude Opus", "claude-3-opus", id="Claude Opus"),
        pytest.param("Claude Haiku", "claude-3-haiku", id="Claude Haiku"),
        pytest.param("Codestral", "codestral", id="Codestral"),
        pytest.param("Mistral Small", "mistral-small", id="Mistral Small"),
        pytest.param("GPT-4o", "gpt-4o", id="GPT-4o"),
        pytest.param("GPT-4o-mini", "gpt-4o-mini", id="GPT-4o-mini"),
        pytest.param("Gemini Pro", "gemini-1.5-pro", id="Gemini Pro"),
        # wire names
        pytest.param("claude-3-haiku-20240307", "claude-3-haiku", id="wire-haiku"),
        pytest.param("claude-3-opus-20240229", "claude-3-opus", id="wire-opus"),
        pytest.param("devstral-medium-2507", "devstral-medium", id="wire-devstral-medium"),
        pytest.param("ruff", "local", id="ruff"),
    ],
)
def test_names_resolve(name: str, model_id: str) -> None:
    registry = load_default()
    assert registry.get(name).id == model_id
    assert name in registry


def test_unknown_model_lists_known_ids() -> None:
    with pytest.raises(InputError) as err:
        load_default().get("gpt-5-ultra")
    message = str(err.value)
    assert "gpt-5-ultra" in message
    assert all(model_id in message for model_id in LIMITS)
    assert load_default().find("gpt-5-ultra") is None


def test_every_model_of_the_routing_table_is_a_registry_id_tagged_for_its_task() -> None:
    registry = load_default()
    table = load_routing()
    ids = set(registry.ids())
    assert set(table.models()) <= ids
    for (task, _tier), names in table.chains.items():
        for name in names:
            assert task.value in registry.get(name).tasks, f"{name} for {task.value}"


# --- user tables ----------------------------------------------------------------------------------


def test_user_table_overrides_a_price_only() -> None:
    before = load_default().get("gpt-4o")
    after = load([{"gpt-4o": {"price_per_1m": 5.0}}]).get("gpt-4o")
    assert (after.input_per_1k, after.output_per_1k) == (0.005, 0.005)
    assert after.wire_name == before.wire_name
    assert after.context_window == before.context_window
    assert after.tasks == before.tasks
    assert after.aliases == before.aliases


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        pytest.param({"output_per_1m": 10.0}, (0.0025, 0.010), id="output-only"),
        pytest.param({"input_per_1k": 0.001}, (0.001, 0.0025), id="input-per-1k"),
        pytest.param({"price_per_1k": 0.002}, (0.002, 0.002), id="price-per-1k"),
        pytest.param(
            {"price_per_1m": 1.0, "output_per_1m": 4.0}, (0.001, 0.004), id="side-wins-in-table"
        ),
    ],
)
def test_user_price_keys(override: dict[str, Any], expected: tuple[float, float]) -> None:
    spec = load([{"gpt-4o": override}]).get("gpt-4o")
    assert (spec.input_per_1k, spec.output_per_1k) == pytest.approx(expected)


def test_user_tables_apply_in_order_and_by_alias() -> None:
    registry = load(
        [
            {"claude-3.5-sonnet": {"price_per_1m": 2.0}},  # an alias names the model
            {"claude-3-5-sonnet": {"wire_name": "claude-3-5-sonnet-latest"}},
            {"Claude Sonnet": {"output_per_1m": 15.0}},
        ]
    )
    spec = registry.get("claude-3-5-sonnet")
    assert (spec.input_per_1k, spec.output_per_1k) == (0.002, 0.015)
    assert spec.wire_name == "claude-3-5-sonnet-latest"
    assert len(registry) == len(LIMITS)


def test_user_adds_a_model_with_a_provider_of_its_own() -> None:
    registry = load(
        [
            {
                "qwen-coder": {
                    "provider": "ollama",
                    "wire_name": "qwen2.5-coder:7b",
                    "price_per_1m": 0,
                    "context_window": 32_768,
                    "max_output": 8_192,
                    "tasks": ["auto_fix", "CODE_GEN"],
                    "aliases": ["qwen"],
                }
            }
        ]
    )
    spec = registry.get("qwen")
    assert spec == ModelSpec(
        "qwen-coder",
        "ollama",
        "qwen2.5-coder:7b",
        0.0,
        0.0,
        32_768,
        8_192,
        ("AUTO_FIX", "CODE_GEN"),
        ("qwen",),
    )
    assert "ollama" in registry.providers()
    assert spec in registry.for_task("AUTO_FIX")
    assert "qwen-coder" in registry.ids()


@pytest.mark.parametrize(
    ("tables", "present"),
    [
        pytest.param([{"claude-3-opus": {"enabled": False}}], False, id="disabled"),
        pytest.param([{"claude-opus": {"enabled": False}}], False, id="disabled-by-alias"),
        pytest.param(
            [{"claude-3-opus": {"enabled": False}}, {"claude-3-opus": {"enabled": True}}],
            True,
            id="re-enabled",
        ),
        pytest.param([{"claude-3-opus": {"enabled": True}}], True, id="enabled"),
    ],
)
def test_enabled_false_removes_a_model(tables: list[dict[str, Any]], present: bool) -> None:
    registry = load(tables)
    assert ("claude-3-opus" in registry.ids()) is present
    assert ("claude-opus" in registry) is present


def test_disabling_an_unknown_model_is_harmless() -> None:
    assert len(load([{"no-such-model": {"enabled": False}}])) == len(LIMITS)


@pytest.mark.parametrize(
    ("table", "model", "key"),
    [
        pytest.param(
            {"mine": {"price_per_1m": 1, "context_window": 8000, "max_output": 1000}},
            "mine",
            "provider",
            id="missing-provider",
        ),
        pytest.param(
            {"mine": {"provider": "ollama", "context_window": 8000, "max_output": 1000}},
            "mine",
            "price_per_1m",
            id="missing-price",
        ),
        pytest.param(
            {"mine": {"provider": "x", "input_per_1m": 1, "context_window": 8, "max_output": 1}},
            "mine",
            "output_per_1m",
            id="missing-output-price",
        ),
        pytest.param(
            {"mine": {"provider": "ollama", "price_per_1m": 0, "max_output": 1000}},
            "mine",
            "context_window",
            id="missing-context-window",
        ),
        pytest.param({"gpt-4o": {"price_per_1m": -1.0}}, "gpt-4o", "price_per_1m", id="negative"),
        pytest.param(
            {"gpt-4o": {"output_per_1m": "cheap"}}, "gpt-4o", "output_per_1m", id="not-a-number"
        ),
        pytest.param({"gpt-4o": {"input_per_1k": True}}, "gpt-4o", "input_per_1k", id="bool"),
        pytest.param(
            {"gpt-4o": {"price_per_1m": float("nan")}}, "gpt-4o", "price_per_1m", id="nan"
        ),
        pytest.param(
            {"gpt-4o": {"price_per_1m": 1, "price_per_1k": 0.001}},
            "gpt-4o",
            "price_per_1k",
            id="both-units",
        ),
        pytest.param({"gpt-4o": {"prize_per_1m": 1}}, "gpt-4o", "prize_per_1m", id="unknown-key"),
        pytest.param(
            {"gpt-4o": {"context_window": 0}}, "gpt-4o", "context_window", id="zero-window"
        ),
        pytest.param(
            {"gpt-4o": {"context_window": "128k"}}, "gpt-4o", "context_window", id="text-window"
        ),
        pytest.param({"gpt-4o": {"max_output": 200_000}}, "gpt-4o", "max_output", id="too-long"),
        pytest.param({"gpt-4o": {"tasks": ["DANCE"]}}, "gpt-4o", "tasks", id="unknown-task"),
        pytest.param({"gpt-4o": {"tasks": "CHAT"}}, "gpt-4o", "tasks", id="tasks-not-list"),
        pytest.param({"gpt-4o": {"aliases": [""]}}, "gpt-4o", "aliases", id="empty-alias"),
        pytest.param({"gpt-4o": {"enabled": "no"}}, "gpt-4o", "enabled", id="enabled-not-bool"),
        pytest.param({"gpt-4o": {"provider": ""}}, "gpt-4o", "provider", id="empty-provider"),
        pytest.param({"gpt-4o": "cheap"}, "gpt-4o", "provider", id="not-a-table"),
        pytest.param(
            {"gpt-4o": {"aliases": ["claude-sonnet"]}}, "gpt-4o", "claude-sonnet", id="alias-taken"
        ),
    ],
)
def test_bad_user_tables_fail_in_one_sentence(table: dict[str, Any], model: str, key: str) -> None:
    with pytest.raises(InputError) as err:
        load([table])
    message = str(err.value)
    assert f"'{model}'" in message
    assert key in message
    assert message.endswith(".")
    assert "\n" not in message and ". " not in message


def test_packaged_table_stays_intact_after_a_user_merge() -> None:
    load([{"gpt-4o": {"price_per_1m": 99.0}}, {"codestral": {"enabled": False}}])
    default = load_default()
    assert default.get("gpt-4o").input_per_1k == 0.0025
    assert "codestral" in default


def test_from_tables_without_the_packaged_table() -> None:
    registry = Registry.from_tables(
        [{"a": {"provider": "p", "price_per_1k": 0.5, "context_window": 10, "max_output": 5}}],
        packaged=False,
    )
    assert registry.ids() == ("a",)
    assert registry.get("a").cost(1000, 1000) == 1.0


def test_parse_reads_a_toml_text() -> None:
    specs = parse(
        '[models.x]\nprovider = "openai"\nwire_name = "gpt-x"\n'
        "input_per_1m = 1.0\noutput_per_1m = 3.0\ncontext_window = 1000\nmax_output = 100\n"
    )
    assert specs == [ModelSpec("x", "openai", "gpt-x", 0.001, 0.003, 1000, 100)]
    with pytest.raises(InputError, match="not valid TOML"):
        parse("[models.x\n")


def test_direct_registry_rejects_a_name_used_twice() -> None:
    a = ModelSpec("a", "p", "a", 0.0, 0.0, 10, 5, aliases=("shared",))
    b = ModelSpec("b", "p", "b", 0.0, 0.0, 10, 5, aliases=("Shared",))
    with pytest.raises(InputError, match="'Shared' that model 'a'"):
        Registry([a, b])
    with pytest.raises(InputError, match="defined twice"):
        Registry([a, a])


def test_wire_name_shared_with_an_id_resolves_to_the_id() -> None:
    registry = load(
        [
            {
                "my-gpt-4o": {
                    "provider": "azure",
                    "wire_name": "gpt-4o",
                    "price_per_1m": 2.5,
                    "context_window": 128_000,
                    "max_output": 16_384,
                }
            }
        ]
    )
    assert registry.get("gpt-4o").provider == "openai"
    assert registry.get("my-gpt-4o").provider == "azure"


def test_load_takes_the_configs_model_tables(tmp_path: Path) -> None:
    (tmp_path / "models.toml").write_text(
        "[models.gpt-4o]\noutput_per_1m = 10.0\n\n[models.claude-3-opus]\nenabled = false\n",
        encoding="utf-8",
    )
    config = load_config(env={"ACE_HOME": str(tmp_path)})
    registry = load(config.model_tables)
    assert registry.get("gpt-4o").output_per_1k == 0.01
    assert "claude-3-opus" not in registry
