"""A real VS Code: code-server with ACE's .vsix, driven through Chromium, applies "Fix with ACE".

A second, test-only extension (tests/vscode_e2e/lint-extension) publishes an E711 diagnostic on
`x == None`, standing in for any linter extension; VS Code passes it to ACE's code action provider,
ACE's offline `local` provider fixes it. The Node driver (tests/vscode_e2e/drive.js) does what a
person does and screenshots each step into a folder this test prints.

Needs code-server, Debian's chromium and tests/vscode_e2e's npm packages: `.ci/vscode-setup.sh`
installs them (code-server into ${XDG_CACHE_HOME:-~/.cache}/ace-ci, outside the repo). Without them
the test skips, or fails when CI is set. The ACE extension comes from clients/vscode/ace.vsix (or
$ACE_VSIX).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
import zipfile
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import server_env

ROOT = Path(__file__).resolve().parents[2]
DRIVER = ROOT / "tests" / "vscode_e2e"
CODE_SERVER_VERSION = "4.100.3"  # keep in step with .ci/vscode-setup.sh
SOURCE = "import os\n\n\ndef f(x):\n    if x == None:\n        return 1\n    return x\n"
FIXED = SOURCE.replace("x == None", "x is None")
LINE, COLUMN = 5, 13  # on `None` (the 13th character), inside the E711 diagnostic

pytestmark = pytest.mark.timeout(180)


def _missing(what: str, fix: str = "run .ci/vscode-setup.sh to install what it needs") -> None:
    message = f"VS Code end-to-end test: {what}; {fix}"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def _code_server() -> Path:
    if os.environ.get("ACE_CODE_SERVER"):
        return Path(os.environ["ACE_CODE_SERVER"])
    cache = os.environ.get("ACE_CI_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "ace-ci"
    )
    return Path(cache, f"code-server-{CODE_SERVER_VERSION}", "node_modules", ".bin", "code-server")


def _tools() -> dict[str, str]:
    code_server = _code_server()
    if not os.access(code_server, os.X_OK):
        _missing(f"code-server is not installed at {code_server}")
    chromium = os.environ.get("ACE_CHROMIUM") or shutil.which("chromium") or ""
    if not chromium:
        _missing("chromium is not installed")
    node = shutil.which("node")
    if node is None:
        _missing("node is not installed")
    if not (DRIVER / "node_modules" / "playwright-core").is_dir():
        _missing(f"npm packages are missing in {DRIVER}")
    vsix = Path(os.environ.get("ACE_VSIX") or ROOT / "clients" / "vscode" / "ace.vsix")
    if not vsix.is_file():
        _missing(
            f"{vsix} is not built",
            "build it: cd clients/vscode && npm ci && npm run build && npm run package",
        )
    return {
        "code_server": str(code_server),
        "chromium": chromium,
        "node": str(node),
        "vsix": str(vsix),
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-3000:]


def _wait_healthy(port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"code-server exited with {proc.returncode}:\n{_tail(log)}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    pytest.fail(f"code-server did not answer /healthz in {timeout:.0f}s:\n{_tail(log)}")


def _stop(proc: subprocess.Popen[Any]) -> None:
    """End a process and everything it started (code-server's extension host and ACE's server,
    the driver's Chromium): it leads its own process group, which may outlive it."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def _activation_started(logs: Path, extension_id: str) -> float | None:
    """When the extension host began activating `extension_id` (epoch seconds), from its log."""
    pattern = re.compile(
        r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}) .*_doActivateExtension "
        + re.escape(extension_id)
        + r"\b",
        re.MULTILINE,
    )
    for path in sorted(logs.rglob("*exthost*.log")):
        match = pattern.search(path.read_text(errors="replace"))
        if match:
            return datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S.%f").timestamp()
    return None


def _extension_id(vsix: str) -> str:
    with zipfile.ZipFile(vsix) as z:
        manifest = json.loads(z.read("extension/package.json"))
    return f"{manifest['publisher']}.{manifest['name']}"


def _package_lint_extension(node: str, out: Path) -> None:
    vsce = DRIVER / "node_modules" / "@vscode" / "vsce" / "vsce"
    proc = subprocess.run(
        [
            node,
            str(vsce),
            "package",
            "--no-dependencies",
            "--allow-missing-repository",
            "--skip-license",
            "--out",
            str(out),
        ],
        cwd=DRIVER / "lint-extension",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _hostile(workspace: Path, markers: Path) -> Path:
    """What a hostile repository would try: its own `ace_lsp` and `server` packages (imported by
    a `python -m` started inside it) and its own launch settings. Each leaves a marker if run."""
    markers.mkdir()
    for name in ("server/__main__.py", "ace_lsp/__init__.py", "ace_lsp/server/__main__.py"):
        file = workspace / name
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text(f"open({str(markers / name.replace('/', '.'))!r}, 'w').close()\n")
    touch = ["/bin/sh", "-c", f"touch {markers}/workspace-setting"]
    (workspace / ".vscode").mkdir()
    (workspace / ".vscode" / "settings.json").write_text(
        json.dumps(
            {
                # machine-scoped: VS Code ignores them here, even in a trusted workspace
                "ace.server.command": touch,
                "ace.server.python": f"{workspace}/python3",
                "ace.maskSecrets": True,  # a workspace may tighten: no warning
            }
        )
    )
    return markers


def _server_starts(logs: Path) -> list[tuple[str, str]]:
    """(launch, working folder) of each server start in the ACE output channel's log."""
    pattern = re.compile(r"Starting the ACE server: (.*) \(in (.*)\)$", re.MULTILINE)
    return [
        (m.group(1), m.group(2))
        for path in sorted(logs.rglob("ACE.log"))
        for m in pattern.finditer(path.read_text(errors="replace"))
    ]


@pytest.mark.parametrize(
    "launch",
    [
        pytest.param("setting", id="ace.server.command"),
        # no setting: the extension finds `ace` on its PATH and runs `ace serve`
        pytest.param("path", id="ace-on-path"),
    ],
)
def test_vscode_fix_with_ace(
    launch: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tools = _tools()
    ace = Path(sys.executable).parent / "ace"
    if launch == "path" and not os.access(ace, os.X_OK):
        pytest.skip(f"no `ace` console script next to {sys.executable}")
    started = time.monotonic()
    vsix = tmp_path / "ace.vsix"  # a copy: the one in clients/vscode may be rebuilt meanwhile
    shutil.copyfile(tools["vsix"], vsix)
    tools["vsix"] = str(vsix)
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    (workspace / "broken.py").write_text(SOURCE, encoding="utf-8")
    (workspace / "ruff.toml").write_text('[lint]\nselect = ["F", "E7"]\n', encoding="utf-8")
    markers = _hostile(workspace, tmp_path / "markers")
    shots = tmp_path / "screenshots"

    lint_vsix = tmp_path / "ace-e2e-lint.vsix"
    _package_lint_extension(tools["node"], lint_vsix)

    data, extensions = tmp_path / "code-server-data", tmp_path / "code-server-extensions"
    config = tmp_path / "code-server.yaml"
    config.write_text("auth: none\ncert: false\n", encoding="utf-8")
    env = server_env(tmp_path / "ace-home")
    for name in ("HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME"):
        env[name] = str(tmp_path / "home" / name.lower())
        os.makedirs(env[name], exist_ok=True)
    if launch == "path":
        # As a user would: VS Code gives its extension host the PATH of a login shell, which
        # /etc/profile resets, so ~/.profile adds the folder with `ace`.
        env["PATH"] = f"{ace.parent}{os.pathsep}{env.get('PATH', '')}"
        env["SHELL"] = "/bin/sh"
        Path(env["HOME"], ".profile").write_text(f'PATH="{ace.parent}:$PATH"\n', encoding="utf-8")
    common = [
        tools["code_server"],
        "--config",
        str(config),
        "--user-data-dir",
        str(data),
        "--extensions-dir",
        str(extensions),
    ]
    installed = subprocess.run(
        [*common, "--install-extension", tools["vsix"], "--install-extension", str(lint_vsix)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert installed.returncode == 0, installed.stdout + installed.stderr

    settings = {
        "telemetry.telemetryLevel": "off",
        "workbench.startupEditor": "none",
        "workbench.welcomePage.walkthroughs.openOnInstall": False,
        "workbench.tips.enabled": False,
        "extensions.autoUpdate": False,
        "extensions.autoCheckUpdates": False,
        "extensions.ignoreRecommendations": True,
        "update.mode": "none",
        "security.workspace.trust.enabled": False,
        "git.enabled": False,
        "files.autoSave": "off",
        "chat.disableAIFeatures": True,
    }
    if launch == "setting":
        settings["ace.server.command"] = [sys.executable, "-m", "ace_lsp.server"]
    for scope in ("User", "Machine"):  # ace.server.command is machine-scoped
        (data / scope).mkdir(parents=True, exist_ok=True)
        (data / scope / "settings.json").write_text(json.dumps(settings, indent=2))

    port = _free_port()
    log = tmp_path / "code-server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                *common,
                "--auth",
                "none",
                "--bind-addr",
                f"127.0.0.1:{port}",
                "--disable-telemetry",
                "--disable-update-check",
                "--disable-workspace-trust",
                "--disable-getting-started-override",
            ],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, ended as one in _stop
        )
    try:
        _wait_healthy(port, proc, log, timeout=60)
        drive_config = {
            "url": f"http://127.0.0.1:{port}/?folder={urllib.parse.quote(str(workspace))}",
            "file": "broken.py",
            "line": LINE,
            "column": COLUMN,
            "expectBefore": "if x == None:",
            "expectAfter": "if x is None:",
            "actionPrefix": "Fix with ACE",
            "screenshots": str(shots),
            "chromiumPath": tools["chromium"],
            "timeoutMs": 60000,
        }
        config_file = tmp_path / "drive.json"
        config_file.write_text(json.dumps(drive_config))
        driver = subprocess.Popen(
            [tools["node"], str(DRIVER / "drive.js"), str(config_file)],
            cwd=DRIVER,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,  # with Chromium, ended as one group if it hangs
        )
        try:
            stdout, stderr = driver.communicate(timeout=150)
        except subprocess.TimeoutExpired:
            _stop(driver)
            stdout, stderr = driver.communicate()
            stderr += "\n(driver timed out after 150 s)"
        finally:
            _stop(driver)
    finally:
        _stop(proc)

    lines = stdout.strip().splitlines()
    result: dict[str, Any] = json.loads(lines[-1]) if lines else {}
    ace_id = _extension_id(tools["vsix"])
    activation = _activation_started(data / "logs", ace_id)
    visible_at = result.get("statusBarVisibleAt")
    activation_to_status = (
        visible_at / 1000 - activation if activation is not None and visible_at else None
    )
    with capsys.disabled():
        print(f"\nVS Code e2e screenshots: {shots}")
        print(f"VS Code e2e steps (ms): { {s['name']: s['ms'] for s in result.get('steps', [])} }")
        if activation_to_status is not None:
            print(
                f"VS Code e2e: extension activation -> status bar item visible: "
                f"{activation_to_status:.2f}s ({result.get('statusText')!r})"
            )
        print(
            f"VS Code e2e: menu {result.get('menu')}; picked {result.get('picked')!r}; "
            f"fix applied in {result.get('fixMs')} ms; whole test "
            f"{time.monotonic() - started:.1f}s"
        )
        for note in result.get("notifications", []):
            print(
                f"VS Code e2e notification: {note['severity']} from {note['source']!r}: "
                f"{note['message']}"
            )
    assert driver.returncode == 0 and result.get("ok"), (
        f"driver failed (screenshots in {shots}):\n{stderr}\n"
        f"{result.get('error')}\ncode-server log:\n{_tail(log)}"
    )
    assert result["statusText"].startswith("ACE $"), result["statusText"]
    assert str(result["picked"]).startswith("Fix with ACE"), result["picked"]
    # the per-diagnostic action: the other extension's diagnostic reached ACE through VS Code
    assert "Comparison to `None`" in str(result["picked"]), result["picked"]
    assert (workspace / "broken.py").read_text(encoding="utf-8") == FIXED
    # an offline, free fix: nothing for ACE to warn about
    ace_alarms = [
        n
        for n in result.get("notifications", [])
        if n["severity"] != "info" and (n["source"] == "ACE" or n["message"].startswith("ACE"))
    ]
    assert not ace_alarms, f"ACE warned during a plain fix (screenshots in {shots}): {ace_alarms}"
    assert activation is not None, f"no activation of {ace_id} in {data / 'logs'}"
    # the launch asked for, started outside the workspace (in the extension's storage folder)
    starts = _server_starts(data / "logs")
    assert starts, f"no server start in the ACE log under {data / 'logs'}"
    expected = f"{sys.executable} -m ace_lsp.server" if launch == "setting" else f"{ace} serve"
    for argv, folder in starts:
        assert argv == expected
        assert not Path(folder).resolve().is_relative_to(workspace.resolve()), folder
        assert Path(folder).resolve().is_relative_to(data.resolve()), folder
    assert sorted(p.name for p in markers.iterdir()) == [], "the workspace's code ran"
