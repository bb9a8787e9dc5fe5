#!/usr/bin/env bash
# Installs what tests/e2e/test_vscode.py needs to run ACE's extension in a real VS Code:
#   - Debian's chromium (the browser playwright-core drives), ripgrep and libkrb5-dev, when missing;
#   - code-server (VS Code in the browser) into a cache folder OUTSIDE the repo, unless there;
#   - tests/vscode_e2e's npm packages (playwright-core, @vscode/vsce), from its package-lock.json.
# Idempotent: a warm run checks and returns in seconds. Everything comes from Debian's and the npm
# registry; nothing is downloaded from anywhere else (see shared notes: vscode-e2e.md).
# The test finds code-server where this script puts it (same ACE_CI_CACHE / XDG_CACHE_HOME rule)
# or at $ACE_CODE_SERVER.
set -euo pipefail
cd "$(dirname "$0")/.."

CODE_SERVER_VERSION=4.100.3  # the newest release whose engines allow Node 20
cache="${ACE_CI_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ace-ci}"
prefix="$cache/code-server-$CODE_SERVER_VERSION"
log() { printf 'vscode-setup: %s\n' "$*"; }
t0=$SECONDS

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"

# 1. System packages.
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v rg >/dev/null 2>&1 || missing+=(ripgrep)
# code-server's native modules build from source: its `kerberos` dependency needs the krb5 headers.
[ -e /usr/include/gssapi/gssapi.h ] || missing+=(libkrb5-dev)
if [ "${#missing[@]}" -gt 0 ]; then
  log "apt-get install ${missing[*]}"
  if ! { $sudo apt-get update -qq && $sudo env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq "${missing[@]}"; } >/tmp/ace-vscode-apt.log 2>&1; then
    tail -n 20 /tmp/ace-vscode-apt.log
    exit 1
  fi
fi
command -v node >/dev/null 2>&1 || { log "node is missing (Node 20 is expected)"; exit 1; }

# 2. code-server, cached outside the repo. A marker written last tells a finished install.
bin="$prefix/node_modules/.bin/code-server"
if [ -f "$prefix/.ace-installed" ] && [ -x "$bin" ]; then
  log "code-server $CODE_SERVER_VERSION already in $prefix"
else
  log "installing code-server $CODE_SERVER_VERSION into $prefix (a minute or two)"
  rm -rf "$prefix"
  mkdir -p "$prefix"
  # @vscode/ripgrep's postinstall downloads rg from GitHub, which is out of reach: seed its cache
  # with Debian's rg so that it logs "Using cached download" instead.
  case "$(uname -m)" in
    x86_64) rg_target=x86_64-unknown-linux-musl ;;
    aarch64) rg_target=aarch64-unknown-linux-musl ;;
    *) log "unsupported machine $(uname -m)"; exit 1 ;;
  esac
  tmp="${TMPDIR:-/tmp}"
  stage="$(mktemp -d)"
  cp "$(command -v rg)" "$stage/rg"
  rg_cache="$tmp/vscode-ripgrep-cache-1.15.11"  # @vscode/ripgrep 1.15.11 fetches rg v13.0.0-10
  mkdir -p "$rg_cache"
  tar -czf "$rg_cache/ripgrep-v13.0.0-10-$rg_target.tar.gz" -C "$stage" rg
  rm -rf "$stage"
  # unsafe_perm: its postinstall refuses root otherwise; yes: node-pty's postinstall runs
  # `npx node-gyp`; nodedir: native modules build from source against Debian's node headers
  # instead of downloading them.
  if ! (cd "$prefix" \
    && echo '{"private": true}' >package.json \
    && npm_config_unsafe_perm=true npm_config_yes=true npm_config_nodedir=/usr \
      npm install --no-audit --no-fund --foreground-scripts "code-server@$CODE_SERVER_VERSION" \
      >"$prefix/install.log" 2>&1); then
    tail -n 40 "$prefix/install.log"
    log "code-server install failed; full log: $prefix/install.log"
    exit 1
  fi
  grep -q "Using cached download" "$prefix/install.log" \
    || log "note: @vscode/ripgrep did not use the seeded cache (see $prefix/install.log)"
  "$bin" --version >/dev/null
  touch "$prefix/.ace-installed"
fi

# 3. The driver's npm packages (in the repo, ignored by git), again only when the lock changed.
lock_sum="$(sha256sum tests/vscode_e2e/package-lock.json | cut -d' ' -f1)"
stamp=tests/vscode_e2e/node_modules/.ace-lock-sha256
if [ "$(cat "$stamp" 2>/dev/null)" != "$lock_sum" ]; then
  log "npm ci in tests/vscode_e2e"
  (cd tests/vscode_e2e && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  echo "$lock_sum" >"$stamp"
fi

log "ready in $((SECONDS - t0))s: $bin ($("$bin" --version | head -n 1)), $(chromium --version 2>/dev/null)"
