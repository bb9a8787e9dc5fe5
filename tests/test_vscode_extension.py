"""The VS Code extension (clients/vscode): its settings are ones the server accepts, and it builds.

The settings the extension sends are declared once, in its package.json: `contributes.configuration`
holds each `ace.*` setting with its default and choices, and the custom field `aceServerSettings`
maps each to the server's flat key (`ace.budget.daily` -> `dailyBudget`). The extension's
settings.ts imports that table; these tests read the same file.
"""

from __future__ import annotations

import enum
import json
import os
import shutil
import subprocess
import time
import typing
from pathlib import Path
from typing import Any

import pytest

from ace_lsp.server.settings import Settings, parse_settings

ROOT = Path(__file__).resolve().parents[1]
EXTENSION = ROOT / "clients" / "vscode"
MANIFEST = json.loads((EXTENSION / "package.json").read_text(encoding="utf-8"))
PROPERTIES: dict[str, dict[str, Any]] = MANIFEST["contributes"]["configuration"]["properties"]
MAPPING: dict[str, str] = MANIFEST["aceServerSettings"]
CLIENT_ONLY = {"ace.server.command", "ace.server.python", "ace.trace.server"}


def _field(server_key: str) -> tuple[str, Any]:
    """The Settings field (name, annotation) a server key sets, by alias or name."""
    for name, info in Settings.model_fields.items():
        if server_key in (name, info.alias):
            return name, info.annotation
    raise AssertionError(f"the server's Settings has no field for {server_key!r}")


def _choices(annotation: Any) -> list[str] | None:
    """The values an enum or Literal field accepts; None for other types."""
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return [str(member.value) for member in annotation]
    if typing.get_origin(annotation) is typing.Literal:
        return [str(arg) for arg in typing.get_args(annotation)]
    return None


def _value(settings: Settings, name: str) -> Any:
    value = getattr(settings, name)
    return value.value if isinstance(value, enum.Enum) else value


def test_every_ace_setting_is_mapped_or_client_only() -> None:
    contributed = set(PROPERTIES)
    assert set(MAPPING) <= contributed, "aceServerSettings names a setting package.json lacks"
    assert contributed - set(MAPPING) == CLIENT_ONLY
    assert len(set(MAPPING.values())) == len(MAPPING), "two settings map to one server key"
    for server_key in MAPPING.values():
        _field(server_key)


def test_server_accepts_every_default() -> None:
    defaults = {
        server_key: PROPERTIES[setting]["default"] for setting, server_key in MAPPING.items()
    }
    settings, problems = parse_settings(defaults)
    assert problems == []
    for server_key, default in defaults.items():
        name, _ = _field(server_key)
        assert _value(settings, name) == default, server_key
    # the extension's defaults are the server's own: sending them changes nothing
    assert settings == Settings()


@pytest.mark.parametrize(
    "setting", [pytest.param(s, id=s) for s in MAPPING if "enum" in PROPERTIES[s]]
)
def test_enum_choices_are_the_servers(setting: str) -> None:
    name, annotation = _field(MAPPING[setting])
    assert PROPERTIES[setting]["enum"] == _choices(annotation)
    for choice in PROPERTIES[setting]["enum"]:
        settings, problems = parse_settings({MAPPING[setting]: choice})
        assert problems == []
        assert _value(settings, name) == choice


@pytest.mark.parametrize(
    "setting", [pytest.param(s, id=s) for s in MAPPING if "minimum" in PROPERTIES[s]]
)
def test_number_bounds_are_the_servers(setting: str) -> None:
    name, _ = _field(MAPPING[setting])
    low = PROPERTIES[setting]["minimum"]
    settings, problems = parse_settings({MAPPING[setting]: low + 2.5})
    assert problems == [] and getattr(settings, name) == low + 2.5
    _, problems = parse_settings({MAPPING[setting]: low - 1})
    assert len(problems) == 1 and MAPPING[setting] in problems[0]


def test_nested_budget_form_matches_the_flat_one() -> None:
    """VS Code's own view of `ace` nests `budget.daily`; the server reads that form too."""
    nested, problems = parse_settings(
        {"ace": {"tier": "pro", "budget": {"daily": 2, "monthly": 20}}}
    )
    flat, _ = parse_settings({"tier": "pro", "dailyBudget": 2, "monthlyBudget": 20})
    assert problems == [] and nested == flat


# -- the build -------------------------------------------------------------------------------------

STEPS = [
    # --ignore-scripts: no dependency needs its install script (esbuild's binary comes as an
    # optional package; @vscode/vsce-sign's would fetch a signing tool that packaging never uses).
    ["npm", "ci", "--no-audit", "--no-fund", "--prefer-offline", "--ignore-scripts"],
    ["npm", "run", "typecheck"],
    ["npm", "test"],
    ["npm", "run", "build"],
    ["npm", "run", "package"],
]


def _npm() -> str:
    npm = shutil.which("npm")
    if npm is None:
        reason = "npm is not installed (Node 20 with npm builds the VS Code extension)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    return npm


@pytest.mark.timeout(300)
def test_extension_builds_tests_and_packages(capsys: pytest.CaptureFixture[str]) -> None:
    _npm()
    vsix = EXTENSION / "ace.vsix"
    vsix.unlink(missing_ok=True)
    timings = []
    for step in STEPS:
        started = time.monotonic()
        proc = subprocess.run(
            step, cwd=EXTENSION, capture_output=True, text=True, timeout=240, check=False
        )
        timings.append(f"{' '.join(step[:3])} {time.monotonic() - started:.1f} s")
        assert proc.returncode == 0, f"{' '.join(step)} failed:\n{proc.stdout}\n{proc.stderr}"
    bundle = EXTENSION / "dist" / "extension.js"
    assert bundle.is_file() and vsix.is_file()
    with capsys.disabled():
        print(
            f"\nVS Code extension: ace.vsix {vsix.stat().st_size / 1024:.1f} KiB, "
            f"bundle dist/extension.js {bundle.stat().st_size / 1024:.1f} KiB "
            f"({'; '.join(timings)})"
        )
