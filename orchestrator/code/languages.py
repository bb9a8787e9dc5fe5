"""Which languages ACE can parse, how to name them, and their tree-sitter parsers.

Grammars come from the per-language `tree-sitter-*` wheels: maintained, offline, and built for
the current `tree-sitter` API (tree-sitter-languages pins tree-sitter < 0.22 and is unmaintained;
tree-sitter-language-pack 1.x downloads grammars at run time). Parsers are made on first use.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from functools import cache
from pathlib import PurePath

from tree_sitter import Language, Parser


@dataclass(frozen=True)
class LanguageSpec:
    """One language ACE parses: its names, file extensions and where its grammar comes from."""

    name: str  # canonical name, also an LSP languageId
    module: str  # grammar wheel's import name
    function: str  # function in that module returning the grammar
    extensions: tuple[str, ...]
    language_ids: tuple[str, ...]


LANGUAGES: tuple[LanguageSpec, ...] = (
    LanguageSpec("python", "tree_sitter_python", "language", (".py", ".pyi", ".pyw"), ("python",)),
    LanguageSpec(
        "javascript",
        "tree_sitter_javascript",
        "language",
        (".js", ".mjs", ".cjs", ".jsx"),
        ("javascript", "javascriptreact", "js", "jsx"),
    ),
    LanguageSpec(
        "typescript",
        "tree_sitter_typescript",
        "language_typescript",
        (".ts", ".mts", ".cts"),
        ("typescript", "ts"),
    ),
    LanguageSpec(
        "tsx", "tree_sitter_typescript", "language_tsx", (".tsx",), ("typescriptreact", "tsx")
    ),
    LanguageSpec("go", "tree_sitter_go", "language", (".go",), ("go", "golang")),
    LanguageSpec("rust", "tree_sitter_rust", "language", (".rs",), ("rust", "rs")),
    LanguageSpec("java", "tree_sitter_java", "language", (".java",), ("java",)),
    LanguageSpec("c", "tree_sitter_c", "language", (".c", ".h"), ("c",)),
    LanguageSpec(
        "cpp",
        "tree_sitter_cpp",
        "language",
        (".cpp", ".cc", ".cxx", ".c++", ".hpp", ".hh", ".hxx", ".h++", ".ipp"),
        ("cpp", "c++", "cuda-cpp"),
    ),
    LanguageSpec("ruby", "tree_sitter_ruby", "language", (".rb", ".rake", ".gemspec"), ("ruby",)),
)

_BY_ID = {lid: spec for spec in LANGUAGES for lid in (spec.name, *spec.language_ids)}
_BY_EXT = {ext: spec for spec in LANGUAGES for ext in spec.extensions}


def resolve(language: str | None, path: str | None = None) -> LanguageSpec | None:
    """Find a grammar by LSP languageId, name or extension (".py" or "py"), else by `path`."""
    if language:
        key = language.lower()
        spec = _BY_ID.get(key) or _BY_EXT.get(key if key.startswith(".") else "." + key)
        if spec:
            return spec
    if path:
        return _BY_EXT.get(PurePath(path).suffix.lower())
    return None


@cache
def grammar(spec: LanguageSpec) -> Language:
    """The tree-sitter grammar of `spec`, loaded from its wheel once."""
    module = importlib.import_module(spec.module)
    return Language(getattr(module, spec.function)())


@cache
def parser(spec: LanguageSpec) -> Parser:
    """One parser per language, reused (parsers are not thread-safe; ACE parses on one thread)."""
    return Parser(grammar(spec))
