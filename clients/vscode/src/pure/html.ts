/**
 * The frame of ACE's webview pages: escaped text and a strict Content-Security-Policy — no
 * scripts at all, styles only from the page's own nonce'd <style> block, nothing loaded from
 * anywhere. Colours come from VS Code's theme variables.
 */

export function escapeHtml(text: unknown): string {
  return String(text)
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;")
    .replace(/'/g, "&#39;");
}

/** The policy; `nonce` is base64, so it needs no escaping inside the attribute. */
export function contentSecurityPolicy(nonce: string): string {
  return `default-src 'none'; style-src 'nonce-${nonce}'; img-src data:; font-src 'none'; form-action 'none'; base-uri 'none'`;
}

const STYLE = `
body { font-family: var(--vscode-font-family); font-size: var(--vscode-font-size);
  color: var(--vscode-foreground); padding: 0 16px 16px; }
h1 { font-size: 1.4em; font-weight: 600; }
h2 { font-size: 1.1em; font-weight: 600; margin-top: 1.6em; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 4px 10px; border-bottom: 1px solid var(--vscode-panel-border, #8884); }
th { font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.muted { color: var(--vscode-descriptionForeground); }
.ok { color: var(--vscode-testing-iconPassed, var(--vscode-charts-green)); }
.bad { color: var(--vscode-errorForeground); }
.warn { color: var(--vscode-editorWarning-foreground); }
a { color: var(--vscode-textLink-foreground); }
svg text { fill: var(--vscode-foreground); font-size: 12px; font-family: var(--vscode-font-family); }
svg .track { fill: var(--vscode-editorWidget-background, #8882); }
svg .bar { fill: var(--vscode-charts-blue); }
svg .bar.warning { fill: var(--vscode-charts-yellow); }
svg .bar.error { fill: var(--vscode-charts-red); }
`;

export interface Page {
  readonly title: string;
  readonly nonce: string;
  /** Already-escaped HTML. */
  readonly body: string;
}

export function page({ title, nonce, body }: Page): string {
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${contentSecurityPolicy(nonce)}">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<title>${escapeHtml(title)}</title>
<style nonce="${escapeHtml(nonce)}">${STYLE}</style>
</head>
<body>
${body}
</body>
</html>
`;
}

/** A link that runs a VS Code command (the webview allows only the commands it names). */
export function commandLink(command: string, label: string): string {
  return `<a href="command:${escapeHtml(command)}">${escapeHtml(label)}</a>`;
}

/** An error page body: what failed, in the server's words. */
export function errorBody(title: string, message: string, retryCommand: string): string {
  return `<h1>${escapeHtml(title)}</h1>
<p class="bad">${escapeHtml(message)}</p>
<p>${commandLink(retryCommand, "Try again")} · ${commandLink("ace.showOutput", "Show the ACE log")}</p>`;
}
