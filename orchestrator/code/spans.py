"""Find the smallest function, method or class around a text range, or a line window when none."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from tree_sitter import Node, Tree

from ace_lsp.orchestrator.code import languages
from ace_lsp.orchestrator.code.source import Source
from ace_lsp.orchestrator.types import LineRange, Position, TextRange


@dataclass(frozen=True)
class Span:
    """A function, method or class (with its decorators or export), or a window of lines."""

    kind: str  # "function" | "method" | "class" | "window"
    name: str | None
    node_type: str | None
    start_line: int  # 0-based, inclusive
    end_line: int
    start_byte: int  # offsets into Source.data, end exclusive
    end_byte: int
    language: str | None

    @property
    def lines(self) -> LineRange:
        """The span's lines, as a LineRange."""
        return LineRange(self.start_line, self.end_line)


@dataclass(frozen=True)
class _Rules:
    """Which nodes are scopes in one grammar, and which surrounding nodes belong to them."""

    scopes: Mapping[str, str]  # node type -> "function" | "method" | "class"
    # A scope type listed here counts only when its field holds one of these types (None: any).
    requires: Mapping[str, tuple[str, frozenset[str] | None]] = field(default_factory=dict)
    wrappers: frozenset[str] = frozenset()  # parents whose extent belongs to the scope
    leading: frozenset[str] = frozenset()  # preceding siblings that belong to the scope
    names: tuple[str, ...] = ("name",)  # fields tried in order for the scope's name


_BOUND = ("value", frozenset({"arrow_function", "function_expression", "generator_function"}))
_WITH_BODY: tuple[str, frozenset[str] | None] = ("body", None)

_JS = _Rules(
    scopes={
        "function_declaration": "function",
        "generator_function_declaration": "function",
        "method_definition": "method",
        "class_declaration": "class",
        "abstract_class_declaration": "class",
        "class": "class",
        # Function values count only when bound to a name, so inline callbacks never do.
        "variable_declarator": "function",
        "field_definition": "method",
        "public_field_definition": "method",
        "export_statement": "function",  # export default function () {}
    },
    requires={
        "variable_declarator": _BOUND,
        "field_definition": _BOUND,
        "public_field_definition": _BOUND,
        "export_statement": _BOUND,
    },
    wrappers=frozenset(
        {"export_statement", "lexical_declaration", "variable_declaration", "variable_declarator"}
    ),
    leading=frozenset({"decorator"}),
    names=("name", "property"),
)

_C_WRAPPERS = frozenset({"type_definition", "declaration"})

_RULES: dict[str, _Rules] = {
    "python": _Rules(
        scopes={"function_definition": "function", "class_definition": "class"},
        wrappers=frozenset({"decorated_definition"}),
    ),
    "javascript": _JS,
    "typescript": _JS,
    "tsx": _JS,
    "go": _Rules(
        scopes={
            "function_declaration": "function",
            "method_declaration": "method",
            "type_spec": "class",
        },
        requires={"type_spec": ("type", frozenset({"struct_type", "interface_type"}))},
        wrappers=frozenset({"type_declaration"}),
    ),
    "rust": _Rules(
        scopes={
            "function_item": "function",
            "impl_item": "class",
            "trait_item": "class",
            "struct_item": "class",
            "enum_item": "class",
        },
        leading=frozenset({"attribute_item"}),
        names=("name", "type"),
    ),
    "java": _Rules(
        scopes={
            "method_declaration": "method",
            "constructor_declaration": "method",
            "compact_constructor_declaration": "method",
            "class_declaration": "class",
            "interface_declaration": "class",
            "enum_declaration": "class",
            "record_declaration": "class",
        },
        # Abstract and interface method signatures have no body; their type is the scope.
        requires={"method_declaration": _WITH_BODY},
    ),
    "c": _Rules(
        scopes={"function_definition": "function", "struct_specifier": "class"},
        requires={"struct_specifier": _WITH_BODY},
        wrappers=_C_WRAPPERS,
        names=("name", "declarator"),
    ),
    "cpp": _Rules(
        scopes={
            "function_definition": "function",
            "class_specifier": "class",
            "struct_specifier": "class",
        },
        requires={"class_specifier": _WITH_BODY, "struct_specifier": _WITH_BODY},
        wrappers=_C_WRAPPERS | {"template_declaration"},
        names=("name", "declarator"),
    ),
    "ruby": _Rules(
        scopes={
            "method": "function",
            "singleton_method": "function",
            "class": "class",
            "module": "class",
        },
    ),
}


def parse(source: Source, language: str | None, path: str | None = None) -> Tree | None:
    """Parse `source` with the grammar for `language` (languageId or extension) or `path`."""
    spec = languages.resolve(language, path)
    return None if spec is None else languages.parser(spec).parse(source.data)


def extract(
    source: Source | str,
    language: str | None,
    range: TextRange,
    *,
    path: str | None = None,
    tree: Tree | None = None,
    enclosing_class: bool = False,
    window: int = 20,
) -> Span:
    """The smallest function, method or class enclosing `range`, else lines ± `window` around it.

    With `enclosing_class`, a method yields its class instead. Pass `tree` to skip parsing.
    """
    src = source if isinstance(source, Source) else Source(source)
    spec = languages.resolve(language, path)
    lang = spec.name if spec else None
    start, end = _points(src, range)
    rules = _RULES.get(lang) if lang else None
    if rules is not None:
        if tree is None:
            tree = parse(src, lang)
        node = tree.root_node.named_descendant_for_point_range(start, end) if tree else None
        scope = _first_scope(node, rules) if node is not None else None
        if scope is not None:
            kind = rules.scopes[scope.type]
            if kind == "function":
                outer = _next_scope(scope, rules)
                if outer is not None and rules.scopes[outer.type] == "class":
                    kind = "method"
            if enclosing_class and kind == "method":
                owner = _next_scope(scope, rules, classes_only=True)
                if owner is not None:
                    kind, scope = "class", owner
            return _scope_span(src, scope, kind, rules, lang)
    return _window(src, start[0], end[0], window, lang)


def _points(src: Source, rng: TextRange) -> tuple[tuple[int, int], tuple[int, int]]:
    """Tree-sitter points for `rng`, narrowed to the code it touches on its first and last line."""
    last = max(src.line_count - 1, 0)
    srow, scol = _clamped_point(src, rng.start, last)
    erow, ecol = _clamped_point(src, max(rng.end, rng.start), last)
    if erow > srow and ecol == 0:
        # An end at column 0 of a later line (a whole-line range) stops at the previous line.
        erow -= 1
        ecol = len(src.line_bytes(erow))
    line = src.line_bytes(srow)
    # Skipping indentation keeps a range starting at column 0 off the enclosing block.
    scol = max(scol, len(line) - len(line.lstrip()))
    line = src.line_bytes(erow)
    ecol = min(ecol, len(line.rstrip()))
    if (erow, ecol) < (srow, scol):
        erow, ecol = srow, scol
    return (srow, scol), (erow, ecol)


def _clamped_point(src: Source, pos: Position, last: int) -> tuple[int, int]:
    row, col = src.to_point(pos)
    if row > last:
        return last, len(src.line_bytes(last))
    return row, col


def _is_scope(node: Node, rules: _Rules) -> bool:
    if node.type not in rules.scopes:
        return False
    need = rules.requires.get(node.type)
    if need is None:
        return True
    child = node.child_by_field_name(need[0])
    return child is not None and (need[1] is None or child.type in need[1])


def _first_scope(node: Node, rules: _Rules) -> Node | None:
    """The scope containing `node`, or the one a decorator/export/attribute around it belongs to."""
    came_from: Node | None = None
    current: Node | None = node
    while current is not None:
        if _is_scope(current, rules):
            return current
        if current.type in rules.leading:
            sibling = current.next_named_sibling
            while sibling is not None and sibling.type in rules.leading:
                sibling = sibling.next_named_sibling
            if sibling is not None and _is_scope(sibling, rules):
                return sibling
        if current.type in rules.wrappers:
            inner = _inner_scope(current, rules, came_from.type if came_from else None)
            if inner is not None:
                return inner
        came_from, current = current, current.parent
    return None


def _inner_scope(wrapper: Node, rules: _Rules, skip: str | None) -> Node | None:
    # Children like the one we came up through are siblings of the scope, not its prefix.
    for child in wrapper.named_children:
        if child.type == skip:
            continue
        if _is_scope(child, rules):
            found: Node | None = child
        elif child.type in rules.wrappers:
            found = _inner_scope(child, rules, None)
        else:
            continue
        if found is not None and _sole(child, wrapper):
            return found
    return None


def _sole(child: Node, wrapper: Node) -> bool:
    """Whether `child` is the only one of its type in `wrapper`, so the wrapper is all its own."""
    return not any(c.type == child.type and c != child for c in wrapper.named_children)


def _next_scope(node: Node, rules: _Rules, *, classes_only: bool = False) -> Node | None:
    current = node.parent
    while current is not None:
        if _is_scope(current, rules) and (
            not classes_only or rules.scopes[current.type] == "class"
        ):
            return current
        current = current.parent
    return None


def _scope_span(src: Source, scope: Node, kind: str, rules: _Rules, lang: str | None) -> Span:
    name = _name(src, scope, rules)
    outer = scope
    while (parent := outer.parent) is not None and parent.type in rules.wrappers:
        if not _sole(outer, parent):
            break
        outer = parent
        name = name or _name(src, outer, rules)
    first = outer
    while (prev := first.prev_named_sibling) is not None and prev.type in rules.leading:
        first = prev
    end_row, end_col = outer.end_point
    if end_col == 0 and end_row > first.start_point.row:
        end_row -= 1
    return Span(
        kind=kind,
        name=name,
        node_type=scope.type,
        start_line=first.start_point.row,
        end_line=end_row,
        start_byte=first.start_byte,
        end_byte=outer.end_byte,
        language=lang,
    )


def _name(src: Source, node: Node, rules: _Rules) -> str | None:
    for field_name in rules.names:
        child = node.child_by_field_name(field_name)
        if child is None:
            continue
        # C declarators nest (pointer -> function -> identifier); the name is the innermost one.
        while child.type.endswith("declarator"):
            inner = child.child_by_field_name("declarator")
            if inner is None:
                named = child.named_children
                if not named:
                    break
                inner = named[-1]
            child = inner
        return src.data[child.start_byte : child.end_byte].decode("utf-8", errors="replace")
    return None


def _window(src: Source, first: int, last: int, window: int, lang: str | None) -> Span:
    start = max(first - window, 0)
    end = min(last + window, max(src.line_count - 1, 0))
    return Span(
        kind="window",
        name=None,
        node_type=None,
        start_line=start,
        end_line=end,
        start_byte=src.line_start_byte(start),
        end_byte=src.line_start_byte(end + 1),
        language=lang,
    )
