"""Test tiers as markers, given by folder so that no test file has to say it.

    unit     tests/unit: pure functions, in-process servers and fakes on 127.0.0.1
    e2e      tests/e2e: real processes (`ace serve`, `ace fix`, ruff), over stdio
    editor   a real editor or its build: Neovim, Emacs, VS Code (code-server), and
             tests/test_vscode_extension.py (npm: typecheck, lint, tests, package)
    team     tests/team: a throwaway PostgreSQL cluster per session
    static   tests/test_static.py: ruff and mypy over the whole tree (`make lint typecheck`)
    slow     measured with `pytest --durations` on a loaded two-core machine: over half a
             second in the unit tier, over five seconds elsewhere; listed in SLOW below

`python -m pytest` still runs everything; `-m` picks: `make test-fast` is `-m "unit and not
slow"`. A file directly under tests/ that is none of the above gets no tier: give it one here.
"""

from __future__ import annotations

from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent

TIERS = {"unit": "unit", "e2e": "e2e", "team": "team"}  # first folder under tests/ -> marker
FILES = {  # files outside those folders, or with a second tier
    "test_static.py": ("static",),
    "test_vscode_extension.py": ("editor",),
    "e2e/test_neovim.py": ("editor",),
    "e2e/test_emacs.py": ("editor",),
    "e2e/test_vscode.py": ("editor",),
}

# A whole module ("path") or one test function with all its parameters ("path::name"), measured
# with `--durations` (2 shared cores, load average 5 to 14). A name that no longer exists marks
# nothing: keep this list in step when such a test is renamed.
SLOW = frozenset(
    {
        # unit: property tests (hypothesis), linear-time proofs, kill -9, thread pools winding down
        "unit/test_properties.py",
        "unit/test_ledger.py::test_kill_9_loses_no_recorded_row",
        "unit/test_ledger.py::test_kill_9_during_calls_leaves_their_estimates_in_the_ledger",
        "unit/test_secrets.py::test_every_pattern_is_linear_on_hostile_input",
        "unit/test_adversarial.py::test_masking_past_the_time_limit_sends_nothing",
        "unit/test_adversarial.py::test_a_fix_cancelled_during_its_check_stops_at_once",
        "unit/test_adversarial.py::test_a_check_past_the_time_limit_refuses_the_reply",
        "unit/test_adversarial.py::test_a_patch_adding_too_many_lines_is_refused_cheaply",
        "unit/test_adversarial.py::test_a_huge_reply_is_cut_off_early_and_refused",
        "unit/test_adversarial.py::test_sse_line_reading_is_linear",
        "unit/test_adversarial.py::test_the_linear_patterns_match_what_the_old_ones_matched",
        "unit/test_adversarial.py::test_masking_runs_off_the_event_loop",
        "unit/test_adversarial.py::test_the_patch_gate_runs_off_the_event_loop",
        # e2e and editors: over five seconds (most of these tiers take one to four)
        "test_vscode_extension.py::test_extension_builds_tests_and_packages",
        "test_vscode_extension.py::test_extension_launch_does_not_run_the_workspace_code",
        "e2e/test_vscode.py",
        "e2e/test_load.py",
        "e2e/test_hover_review.py",
        "e2e/test_secrets.py::test_no_key_leaks_from_the_cli",
        "e2e/test_secrets.py::test_no_key_leaks_from_the_server",
        "e2e/test_lsp_surface.py::test_selection_offers_improve_and_review_when_a_model_can",
        "e2e/test_lsp_surface.py::test_exits_by_itself_when_the_editor_dies",
        "e2e/test_lsp_surface.py::test_prefetch_makes_picking_the_fix_instant",
        "e2e/test_lsp_surface.py::test_bad_input_gets_errors_and_the_server_stays_up",
        "e2e/test_lsp_surface.py::test_models_and_usage_commands",
        "e2e/test_trust.py::test_trust_allows_the_file_until_it_changes",
        "e2e/test_trust.py::test_cli_sends_nothing_to_a_repositorys_server",
        "e2e/test_fault_matrix.py::test_fault_falls_back_to_a_valid_patch",
        "e2e/test_jsonrpc_fuzz.py::test_broken_framing_leaves_the_server_listening",
        "team/test_concurrency.py::test_20_processes_x_20_concurrent_never_overspend",
    }
)


def _markers(relative: str, function: str) -> list[str]:
    """The markers a test gets from where it lives: `relative` is its file under tests/."""
    parts = relative.split("/")
    names = [TIERS[parts[0]]] if len(parts) > 1 and parts[0] in TIERS else []
    names += FILES.get(relative, ())
    if relative in SLOW or f"{relative}::{function}" in SLOW:
        names.append("slow")
    return names


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        try:
            relative = item.path.resolve().relative_to(TESTS).as_posix()
        except ValueError:  # a test outside tests/ (a path given on the command line)
            continue
        function = getattr(item, "originalname", item.name)
        for name in _markers(relative, function):
            item.add_marker(name)
