#!/usr/bin/env node
// Drives a running code-server through Debian's Chromium (playwright-core) the way a person would:
// open the file, wait for ACE's status bar item, put the cursor on the diagnostic, open the Quick
// Fix menu, pick "Fix with ACE", wait for the fixed text, save. Run by tests/e2e/test_vscode.py.
//
// Usage: node drive.js CONFIG.json   (keys below); prints one JSON result line on stdout, progress
// on stderr, and a screenshot per step into config.screenshots. Exits 1 on the first failed step,
// after a screenshot of what was on the screen then.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { chromium } = require('playwright-core');

const config = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const {
  url, // http://127.0.0.1:PORT/?folder=/abs/workspace
  file, // name to type into Quick Open, e.g. "broken.py"
  line, // 1-based line to put the cursor on
  column, // 1-based column on that line
  expectBefore, // text the editor shows before the fix
  expectAfter, // text the editor shows after the fix
  actionPrefix = 'Fix with ACE', // the Quick Fix item to pick
  statusPattern = '^ACE \\$\\d', // the status bar item to wait for
  screenshots, // folder for the PNGs
  chromiumPath = '/usr/bin/chromium',
  timeoutMs = 60000, // per step
  requireDiagnostic = true, // wait for a squiggle on the line before opening Quick Fix
} = config;

const t0 = Date.now();
const result = { steps: [], screenshots: [] };
let page;
let shot = 0;

function log(message) {
  process.stderr.write(`[drive +${((Date.now() - t0) / 1000).toFixed(1)}s] ${message}\n`);
}

async function screenshot(name) {
  if (!page) return;
  shot += 1;
  const file = path.join(screenshots, `${String(shot).padStart(2, '0')}-${name}.png`);
  try {
    await page.screenshot({ path: file, timeout: 10000 });
    result.screenshots.push(file);
  } catch (err) {
    log(`screenshot ${name} failed: ${err.message}`);
  }
}

async function step(name, fn) {
  const start = Date.now();
  log(`${name} ...`);
  try {
    const value = await fn();
    result.steps.push({ name, ms: Date.now() - start });
    await screenshot(name);
    return value;
  } catch (err) {
    result.steps.push({ name, ms: Date.now() - start, error: String(err && err.message) });
    await screenshot(`${name}-FAILED`);
    throw new Error(`step "${name}" failed: ${err && err.message}`);
  }
}

// The editor's text as a person reads it (Monaco renders spaces as U+00A0 and only the visible
// lines; the file here is short enough to be all visible).
function editorText() {
  return page.evaluate(() => {
    const editor = document.querySelector('.editor-instance .monaco-editor .view-lines');
    if (!editor) return '';
    const lines = [...editor.querySelectorAll('.view-line')]
      .map((el) => ({ top: parseFloat(el.style.top) || 0, text: el.textContent }))
      .sort((a, b) => a.top - b.top);
    return lines.map((l) => l.text.replace(/\u00a0/g, ' ')).join('\n');
  });
}

async function waitForEditorText(needle, timeout = timeoutMs) {
  const deadline = Date.now() + timeout;
  let text = '';
  while (Date.now() < deadline) {
    text = await editorText();
    if (text.includes(needle)) return text;
    await page.waitForTimeout(50);
  }
  throw new Error(`editor never showed ${JSON.stringify(needle)}; it shows:\n${text}`);
}

async function statusItems() {
  return page.evaluate(() =>
    [...document.querySelectorAll('.statusbar-item')]
      .map((el) => (el.textContent || '').trim())
      .filter(Boolean),
  );
}

async function main() {
  fs.mkdirSync(screenshots, { recursive: true });
  const browser = await chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  try {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    // Every notification toast shown, with its severity and source, polled every 100 ms so that
    // short-lived ones are caught too.
    await context.addInitScript(() => {
      window.__toasts = [];
      const seen = new Set();
      setInterval(() => {
        for (const el of document.querySelectorAll('.notification-list-item')) {
          const text = (sel) => (el.querySelector(sel)?.textContent || '').trim();
          const message = text('.notification-list-item-message');
          const icon = el.querySelector('.notification-list-item-icon');
          const severity = icon?.classList.contains('codicon-error')
            ? 'error'
            : icon?.classList.contains('codicon-warning')
              ? 'warning'
              : 'info';
          const source = text('.notification-list-item-source').replace(/^Source:\s*/, '');
          const key = `${severity}|${source}|${message}`;
          if (message && !seen.has(key)) {
            seen.add(key);
            window.__toasts.push({ severity, source, message, at: Date.now() });
          }
        }
      }, 100);
    });
    page = await context.newPage();
    page.setDefaultTimeout(timeoutMs);
    page.on('pageerror', (err) => log(`page error: ${err.message}`));

    await step('workbench', async () => {
      await page.goto(url);
      await page.locator('.monaco-workbench .part.statusbar').waitFor();
      await page.locator('.monaco-workbench .part.editor').waitFor();
    });

    await step('open-file', async () => {
      // Quick Open (Ctrl+P) as a person does; retried, since the first keystrokes can land
      // before the workbench has its keybindings.
      const input = page.locator('.quick-input-widget input');
      for (let attempt = 0; ; attempt++) {
        await page.locator('.monaco-workbench').click({ position: { x: 600, y: 300 } });
        await page.keyboard.press('Control+P');
        try {
          await input.waitFor({ state: 'visible', timeout: 3000 });
          break;
        } catch (err) {
          if (attempt >= 5) throw err;
        }
      }
      await input.fill(file);
      const row = page.locator('.quick-input-list .monaco-list-row', { hasText: file }).first();
      await row.waitFor();
      await page.keyboard.press('Enter');
      await page.locator('.tab.active', { hasText: file }).waitFor();
      await waitForEditorText(expectBefore);
    });

    result.statusBarVisibleAt = await step('status-bar', async () => {
      await page.waitForFunction(
        (pattern) =>
          [...document.querySelectorAll('.statusbar-item')].some((el) =>
            new RegExp(pattern).test((el.textContent || '').trim()),
          ),
        statusPattern,
        { timeout: timeoutMs, polling: 20 },
      );
      const at = Date.now();
      result.statusText = (await statusItems()).find((t) => new RegExp(statusPattern).test(t));
      return at;
    });

    await step('cursor', async () => {
      if (requireDiagnostic) {
        // the other extension's diagnostic, drawn as a squiggle
        await page.locator('.editor-instance .monaco-editor .squiggly-error').first().waitFor();
      }
      await page.keyboard.press('Control+G');
      const input = page.locator('.quick-input-widget input');
      await input.waitFor({ state: 'visible' });
      await input.fill(`:${line}:${column}`); // Go to Line's own prefix is ":"; fill replaces it
      await page.keyboard.press('Enter');
      await page.waitForFunction(
        (want) => {
          const el = [...document.querySelectorAll('.statusbar-item')].find((e) =>
            /^Ln \d+, Col \d+/.test((e.textContent || '').trim()),
          );
          return el && (el.textContent || '').trim().startsWith(want);
        },
        `Ln ${line}, Col ${column}`,
        { polling: 20 },
      );
    });

    await step('quick-fix-menu', async () => {
      const rows = page.locator('.action-widget .monaco-list-row');
      for (let attempt = 0; ; attempt++) {
        await page.keyboard.press('Control+.');
        try {
          await page
            .locator('.action-widget .monaco-list-row', { hasText: actionPrefix })
            .first()
            .waitFor({ timeout: 5000 });
          break;
        } catch (err) {
          // the menu may open before the providers answer, or say "No code actions available"
          if (attempt >= 3) throw err;
          await page.keyboard.press('Escape');
        }
      }
      result.menu = (await rows.allTextContents()).map((t) => t.trim());
    });

    await step('fixed', async () => {
      // Keyboard, as in the menu's own hints: the widget's pointer block takes mouse clicks in
      // headless Chromium. Arrow down to the item, then Enter.
      const focused = page.locator('.action-widget .monaco-list-row.focused');
      for (let presses = 0; ; presses++) {
        const text = ((await focused.textContent({ timeout: 2000 }).catch(() => '')) || '').trim();
        if (text.startsWith(actionPrefix)) {
          result.picked = text;
          break;
        }
        if (presses >= 20) throw new Error(`could not focus ${actionPrefix}; focused: ${text}`);
        await page.keyboard.press('ArrowDown');
      }
      const start = Date.now();
      await page.keyboard.press('Enter');
      result.fixText = await waitForEditorText(expectAfter);
      result.fixMs = Date.now() - start;
    });

    await step('saved', async () => {
      await page.keyboard.press('Control+S');
      await page.locator('.tab.active.dirty').waitFor({ state: 'detached' });
      await page.locator('.tab.active', { hasText: file }).waitFor();
      result.statusItems = await statusItems();
    });
    result.ok = true;
  } finally {
    result.notifications = page ? await page.evaluate(() => window.__toasts).catch(() => []) : [];
    await browser.close().catch(() => {});
  }
}

main()
  .catch((err) => {
    result.ok = false;
    result.error = String(err && err.stack ? err.stack : err);
    log(result.error);
  })
  .finally(() => {
    result.totalMs = Date.now() - t0;
    process.stdout.write(`${JSON.stringify(result)}\n`);
    process.exitCode = result.ok ? 0 : 1;
  });
