"""The VS Code extension (clients/vscode): its settings are ones the server accepts, and it builds.

The settings the extension sends are declared once, in its package.json: `contributes.configuration`
holds each `ace.*` setting with its default and choices, and the custom field `aceServerSettings`
maps each to the server's flat key (`ace.budget.daily` -> `dailyBudget`). The extension's
settings.ts imports that table; these tests read the same file.

Workspace Trust (issue 12 §2): every setting that can run code or spend money is restricted in an
untrusted workspace, the launch settings are machine-scoped, and the launch the extension computes
(its own compiled serverCommand module, run with node) does not run a workspace's `server/` or
`ace_lsp/` even when started inside that workspace.
"""

from __future__ import annotations

import enum
import json
import os
import re
import shutil
import subprocess
import sys
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
UNTRUSTED = MANIFEST["capabilities"]["untrustedWorkspaces"]
# Settings an untrusted workspace may still set: they neither run code nor spend money. A new
# setting must be added here or to `restrictedConfigurations`, or the tests below fail.
HARMLESS = {"ace.trace.server"}  # logs LSP messages to the local output channel


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


# -- Workspace Trust -------------------------------------------------------------------------------


def test_untrusted_workspaces_are_supported_with_limits() -> None:
    assert UNTRUSTED["supported"] == "limited"
    assert UNTRUSTED["description"]
    restricted = UNTRUSTED["restrictedConfigurations"]
    assert len(restricted) == len(set(restricted))
    assert set(restricted) <= set(PROPERTIES), "a restricted setting package.json lacks"


@pytest.mark.parametrize("setting", [pytest.param(s, id=s) for s in PROPERTIES])
def test_every_setting_is_restricted_or_harmless(setting: str) -> None:
    """Each contributed setting is either restricted when untrusted or on the harmless list."""
    restricted = setting in UNTRUSTED["restrictedConfigurations"]
    assert restricted != (setting in HARMLESS), (
        f"{setting}: restrict it in capabilities.untrustedWorkspaces.restrictedConfigurations "
        "if it can run code or spend money, else add it to HARMLESS"
    )


def test_every_server_setting_is_restricted() -> None:
    """Every setting the server gets can spend (tier, budgets, userId, prefetch, hover review,
    risk level) or leak (maskSecrets); the launch settings choose what runs."""
    assert set(MAPPING) | {"ace.server.command", "ace.server.python"} <= set(
        UNTRUSTED["restrictedConfigurations"]
    )
    assert "workspace" not in MAPPING.values(), "'workspace' is the workspace layer's key"


@pytest.mark.parametrize(
    "setting", [pytest.param(s, id=s) for s in PROPERTIES if s.startswith("ace.server.")]
)
def test_launch_settings_are_machine_scoped(setting: str) -> None:
    """`machine`: user settings only; VS Code ignores a workspace's value even when trusted."""
    assert PROPERTIES[setting]["scope"] == "machine"


# -- the build -------------------------------------------------------------------------------------

STEPS = [
    # --ignore-scripts: no dependency needs its install script (esbuild's binary comes as an
    # optional package; @vscode/vsce-sign's would fetch a signing tool that packaging never uses).
    ["npm", "ci", "--no-audit", "--no-fund", "--prefer-offline", "--ignore-scripts"],
    ["npm", "run", "typecheck"],
    ["npm", "run", "lint"],  # eslint (typescript-eslint, type-aware) and prettier --check
    ["npm", "test"],
    # no separate build: `vscode:prepublish` builds the bundle whenever vsce packages
    ["npm", "run", "package"],
]


def test_packaging_always_builds_and_tools_are_pinned() -> None:
    """`vsce package` (by `npm run package` or by hand) runs `vscode:prepublish` first, so a
    .vsix never carries a stale bundle; lint and format run from npm scripts; every dev
    dependency is an exact version (Node 20 compatible ones are chosen on purpose)."""
    scripts = MANIFEST["scripts"]
    assert scripts["vscode:prepublish"] == "npm run build"
    assert scripts["package"].startswith("vsce package")
    assert "eslint" in scripts["lint"] and "prettier --check" in scripts["lint"]
    loose = {
        name: version
        for name, version in MANIFEST["devDependencies"].items()
        if not re.fullmatch(r"\d+\.\d+\.\d+", version)
    }
    assert loose == {}, f"pin these to one version: {loose}"


def _npm() -> str:
    npm = shutil.which("npm")
    if npm is None:
        reason = "npm is not installed (Node 20 with npm builds the VS Code extension)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    return npm


@pytest.mark.timeout(480)
def test_extension_builds_tests_and_packages(capsys: pytest.CaptureFixture[str]) -> None:
    _npm()
    vsix = EXTENSION / "ace.vsix"
    bundle = EXTENSION / "dist" / "extension.js"
    vsix.unlink(missing_ok=True)
    bundle.unlink(missing_ok=True)  # packaging must build it
    timings = []
    for step in STEPS:
        started = time.monotonic()
        proc = subprocess.run(
            step, cwd=EXTENSION, capture_output=True, text=True, timeout=240, check=False
        )
        timings.append(f"{' '.join(step[:3])} {time.monotonic() - started:.1f} s")
        assert proc.returncode == 0, f"{' '.join(step)} failed:\n{proc.stdout}\n{proc.stderr}"
    assert bundle.is_file() and vsix.is_file()
    with capsys.disabled():
        print(
            f"\nVS Code extension: ace.vsix {vsix.stat().st_size / 1024:.1f} KiB, "
            f"bundle dist/extension.js {bundle.stat().st_size / 1024:.1f} KiB "
            f"({'; '.join(timings)})"
        )


# -- the launch cannot run workspace code ----------------------------------------------------------

# What server.ts does to start the server, with the extension's own compiled modules: resolve the
# launch from the settings, find its executable on PATH, build its environment.
LAUNCH_JS = """
const fs = require("node:fs");
const [commandModule, providersModule, input] = process.argv.slice(1); // node -e: no script
const { resolveLaunch, findExecutable, launchEnvironment } = require(commandModule);
const { serverEnvironment } = require(providersModule);
const given = JSON.parse(input);
const isExecutable = (file) => {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
};
const lookup = { pathVar: given.env.PATH, delimiter: ":", extensions: [], isExecutable };
const which = (name) => findExecutable(name, lookup);
const launch = resolveLaunch(given.command, given.python, which);
const env = launchEnvironment(launch, serverEnvironment(given.env, {}));
console.log(JSON.stringify({ ...launch, command: which(launch.command), env }));
"""

# Each writes a marker named after itself when Python imports it.
HOSTILE = {
    "server/__init__.py": "server",
    "server/__main__.py": "server.__main__",
    "ace_lsp/__init__.py": "ace_lsp",
    "ace_lsp/server/__init__.py": "ace_lsp.server",
    "ace_lsp/server/__main__.py": "ace_lsp.server.__main__",
}


def _hostile_workspace(root: Path) -> tuple[Path, Path]:
    """A workspace whose `server`, `ace_lsp` and `ace_lsp.server` packages, and `./ace` and
    `./python3` programs, each leave a marker in a folder outside it when run."""
    workspace, markers = root / "hostile", root / "markers"
    markers.mkdir()
    for name, module in HOSTILE.items():
        file = workspace / name
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text(
            f"import pathlib\npathlib.Path({str(markers)!r}, {module!r}).touch()\n",
            encoding="utf-8",
        )
    for program in ("ace", "python3"):
        file = workspace / program
        file.write_text(f"#!/bin/sh\ntouch '{markers}/{program}'\n", encoding="utf-8")
        file.chmod(0o755)
    return workspace, markers


@pytest.fixture(scope="module")
def pure_modules(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """clients/vscode/src/pure/{serverCommand,providers,settingsMap}.ts, compiled with the
    extension's esbuild, by name."""
    _node()
    esbuild = EXTENSION / "node_modules" / ".bin" / "esbuild"
    if not esbuild.exists():
        _npm()
        proc = subprocess.run(
            STEPS[0], cwd=EXTENSION, capture_output=True, text=True, timeout=240, check=False
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
    out = tmp_path_factory.mktemp("pure")
    modules = {}
    for name in ("serverCommand", "providers", "settingsMap"):
        target = out / f"{name}.js"
        subprocess.run(
            [
                str(esbuild),
                f"src/pure/{name}.ts",
                "--bundle",
                "--platform=node",
                "--format=cjs",
                "--log-level=warning",
                f"--outfile={target}",
            ],
            cwd=EXTENSION,
            check=True,
            timeout=60,
        )
        modules[name] = str(target)
    return modules


def _node_eval(script: str, *args: str) -> Any:
    """What `script` (run by node with `args`) prints, as JSON."""
    node = shutil.which("node")
    assert node is not None
    proc = subprocess.run(
        [node, "-e", script, *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def _extension_launch(modules: dict[str, str], given: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = _node_eval(
        LAUNCH_JS, modules["serverCommand"], modules["providers"], json.dumps(given)
    )
    return result


def _frame(message: dict[str, Any]) -> bytes:
    body = json.dumps(message).encode()
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


def _lsp_session(argv: list[str], cwd: Path, env: dict[str, str]) -> list[dict[str, Any]]:
    """initialize, initialized, shutdown, exit; the messages the server sent back."""
    messages: list[dict[str, Any]] = [
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {"processId": None, "rootUri": cwd.as_uri(), "capabilities": {}},
        },
        {"jsonrpc": "2.0", "method": "initialized", "params": {}},
        {"jsonrpc": "2.0", "id": 2, "method": "shutdown", "params": None},
        {"jsonrpc": "2.0", "method": "exit", "params": None},
    ]
    proc = subprocess.run(
        argv,
        cwd=cwd,
        env=env,
        input=b"".join(_frame(m) for m in messages),
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-3000:]
    bodies = re.split(rb"Content-Length: \d+\r\n(?:[^\r\n]+\r\n)*\r\n", proc.stdout)
    return [json.loads(body) for body in bodies if body.strip()]


def _node() -> None:
    if shutil.which("node") is None:
        reason = "node is not installed (the launch test runs the extension's compiled module)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)


def _ace_env(tmp_path: Path, path: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    # Relative entries, read against the working folder, which is the hostile workspace here.
    return env | {"ACE_HOME": str(tmp_path / "ace-home"), "PATH": path, "PYTHONPATH": "."}


def test_unguarded_launches_would_run_the_workspace_code(tmp_path: Path) -> None:
    """Without `-I`, the workspace's packages win: the old `python3 -m server`, `-m ace_lsp.server`
    without `-I`, and the `ace` script with a relative PYTHONPATH. So the test below can fail."""
    workspace, markers = _hostile_workspace(tmp_path)
    env = _ace_env(tmp_path, os.environ["PATH"])
    for argv, marker in [
        ([sys.executable, "-m", "server"], "server.__main__"),
        ([sys.executable, "-m", "ace_lsp.server"], "ace_lsp"),
        ([str(Path(sys.executable).parent / "ace"), "serve"], "ace_lsp"),
    ]:
        subprocess.run(
            argv, cwd=workspace, env=env, stdin=subprocess.DEVNULL, capture_output=True, timeout=60
        )
        assert (markers / marker).exists(), f"{argv} did not run the workspace's {marker}"
        for old in markers.iterdir():
            old.unlink()


@pytest.mark.parametrize(
    "source", [pytest.param("python", id="python-fallback"), pytest.param("ace", id="ace-on-path")]
)
def test_extension_launch_does_not_run_the_workspace_code(
    source: str, tmp_path: Path, pure_modules: dict[str, str]
) -> None:
    """The extension's launch, started inside a hostile workspace with `.` first on PATH and
    PYTHONPATH=. (the worst case: the extension itself starts it in its storage folder), answers
    initialize and shutdown and runs none of the workspace's code."""
    workspace, markers = _hostile_workspace(tmp_path)
    venv_bin = str(Path(sys.executable).parent)
    if source == "ace" and not (Path(venv_bin) / "ace").exists():
        pytest.skip(f"no `ace` console script next to {sys.executable}")
    system = "/usr/local/bin:/usr/bin:/bin"
    if source == "python" and shutil.which("ace", path=system):
        pytest.skip("an `ace` is installed system-wide, so the Python fallback is never chosen")
    path = f".::{venv_bin}:{system}" if source == "ace" else f".::{system}"
    env = _ace_env(tmp_path, path)
    launch = _extension_launch(pure_modules, {"command": [], "python": sys.executable, "env": env})
    assert launch["source"] == source
    if source == "python":
        assert launch["command"] == sys.executable
        assert launch["args"] == ["-I", "-m", "ace_lsp.server"]
        # `python3` by name is never the workspace's ./python3: relative PATH entries are skipped
        bare = _extension_launch(pure_modules, {"command": [], "python": "python3", "env": env})
        assert bare["command"] == shutil.which("python3", path=system)
    else:
        assert launch["command"] == str(Path(venv_bin) / "ace")  # not ./ace
        assert launch["args"] == ["serve"]
    assert not any(k.startswith("PYTHON") for k in launch["env"]), "PYTHONPATH reached the server"

    replies = _lsp_session([launch["command"], *launch["args"]], workspace, launch["env"])
    answered = {r.get("id"): r for r in replies if "id" in r}
    assert "capabilities" in answered[1]["result"] and answered[2]["result"] is None
    assert sorted(p.name for p in markers.iterdir()) == [], "the workspace's code ran"


# -- the two settings layers, end to end -----------------------------------------------------------

# What settings.ts sends, from what VS Code's `inspect` would say for each setting.
LAYERS_JS = """
const [settingsMap, input] = process.argv.slice(1); // node -e: no script
const { layeredSettings } = require(settingsMap);
const { layers, trusted, defaults } = JSON.parse(input);
const inspect = (key) => ({ defaultValue: defaults[key], ...layers[key] });
console.log(JSON.stringify(layeredSettings(inspect, { trusted })));
"""


@pytest.mark.parametrize(
    ("layers", "trusted", "expected", "refused"),
    [
        pytest.param(
            {
                "ace.tier": {"globalValue": "pro", "workspaceValue": "free"},
                "ace.budget.daily": {"globalValue": 2, "workspaceValue": 1},
                "ace.maskSecrets": {"globalValue": False, "workspaceFolderValue": True},
            },
            True,
            {"tier": "free", "daily_budget": 2, "workspace_daily_cap": 1, "mask_secrets": True},
            [],
            id="a-trusted-workspace-tightens",
        ),
        pytest.param(
            {
                "ace.tier": {"globalValue": "free", "workspaceValue": "ultimate"},
                "ace.prefetch": {"workspaceValue": True},
                "ace.userId": {"workspaceValue": "someone-else"},
            },
            True,
            {"tier": "free", "prefetch": False, "user_id": "local"},
            ["tier", "prefetch", "userId"],
            id="a-trusted-workspace-cannot-loosen",
        ),
        pytest.param(
            {
                "ace.tier": {"globalValue": "pro", "workspaceValue": "free"},
                "ace.hoverReview": {"workspaceValue": "auto"},
            },
            False,
            {"tier": "pro", "hover_review": "cached"},
            [],
            id="an-untrusted-workspace-is-not-sent",
        ),
    ],
)
def test_layered_settings_reach_the_server(
    layers: dict[str, Any],
    trusted: bool,
    expected: dict[str, Any],
    refused: list[str],
    pure_modules: dict[str, str],
) -> None:
    """The extension's settingsMap builds the object; the server's parse_settings reads it."""
    defaults = {key: spec.get("default") for key, spec in PROPERTIES.items()}
    sent = _node_eval(
        LAYERS_JS,
        pure_modules["settingsMap"],
        json.dumps({"layers": layers, "trusted": trusted, "defaults": defaults}),
    )
    assert set(sent) == set(MAPPING.values()) | {"workspace"}
    settings, problems = parse_settings(sent)
    for name, value in expected.items():
        assert _value(settings, name) == value, name
    if refused:
        assert len(problems) == 1 and all(repr(key) in problems[0] for key in refused), problems
    else:
        assert problems == []
