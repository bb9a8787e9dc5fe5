// Test-only linter: one diagnostic per `== None` comparison in Python files, with the rule code and
// range ruff gives (E711 on `None`), published through a diagnostic collection as any linter does.
'use strict';
const vscode = require('vscode');

const PATTERN = /(==|!=)\s*None\b/g;

function lint(document) {
  const diagnostics = [];
  for (let line = 0; line < document.lineCount; line++) {
    const text = document.lineAt(line).text;
    for (const match of text.matchAll(PATTERN)) {
      const start = match.index + match[0].length - 'None'.length;
      const range = new vscode.Range(line, start, line, start + 'None'.length);
      const op = match[1] === '==' ? 'is' : 'is not';
      const diagnostic = new vscode.Diagnostic(
        range,
        `Comparison to \`None\` should be \`cond ${op} None\``,
        vscode.DiagnosticSeverity.Error,
      );
      diagnostic.code = 'E711';
      diagnostic.source = 'e2e-lint';
      diagnostics.push(diagnostic);
    }
  }
  return diagnostics;
}

function activate(context) {
  const collection = vscode.languages.createDiagnosticCollection('e2e-lint');
  const update = (document) => {
    if (document.languageId === 'python') collection.set(document.uri, lint(document));
  };
  context.subscriptions.push(
    collection,
    vscode.workspace.onDidOpenTextDocument(update),
    vscode.workspace.onDidChangeTextDocument((event) => update(event.document)),
    vscode.workspace.onDidCloseTextDocument((document) => collection.delete(document.uri)),
  );
  vscode.workspace.textDocuments.forEach(update);
}

module.exports = { activate };
