"""Edits written other than as unified diffs: search/replace blocks, or the allowed lines rewritten.

Models write some edits best as aider's SEARCH/REPLACE blocks or as the allowed span rewritten in
one fenced code block. `read` turns a reply that holds no unified diff into the edited file's text;
`patches` diffs that against the original and checks it like any diff, so nothing loosens.

Everything here reads model text: plain string code, one pass over the reply, and one search of
the file per block (Python's `str.find` is linear); blocks and added lines are capped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from ace_lsp.orchestrator.caps import MAX_ADDED_LINES, MAX_EDIT_BLOCKS
from ace_lsp.orchestrator.code import diff_text, languages
from ace_lsp.orchestrator.errors import (
    ContextMismatch,
    MalformedDiff,
    MultipleFiles,
    NoDiff,
    TooLarge,
    WrongFile,
)
from ace_lsp.orchestrator.types import LineRange

__all__ = ["Rewrite", "read"]

SEARCH_REPLACE = "search/replace blocks"
SPAN = "rewritten lines"
_DIFF_INFOS = frozenset({"diff", "patch", "udiff", "git-diff"})
_GENERIC_INFOS = frozenset({"", "text", "txt", "plaintext", "plain", "code", "source"})
_NAME_NOISE = "`*#:'\" "


@dataclass(frozen=True)
class Rewrite:
    """The file as the reply's edit leaves it, and which format the edit came in."""

    format: str  # SEARCH_REPLACE or SPAN, for messages
    new_text: str


@dataclass
class _Block:
    number: int
    name: str | None  # the file-name line before the block, if any
    search: list[str]
    replace: list[str]


def read(
    reply: str,
    original: str,
    allowed: Sequence[LineRange],
    *,
    target: str,
    language: str | None = None,
    path: str | None = None,
) -> Rewrite | None:
    """The file after the reply's search/replace blocks or span rewrite; None if it has neither.

    `target` is the file's base name; `language`/`path` say which fence labels name its language.
    Raises a PatchError subclass for an edit that cannot be applied exactly once.
    """
    if "\r\n" in reply:
        reply = reply.replace("\r\n", "\n")  # CRLF in a reply is transport, not content
    blocks = _search_replace_blocks(reply)
    if blocks:
        _check_names(blocks, target)
        return Rewrite(SEARCH_REPLACE, _apply_blocks(original, blocks))
    body = _span_block(reply, target, languages.resolve(language, path), language, path)
    if body is None:
        return None
    return Rewrite(SPAN, _replace_span(original, allowed, body))


# -- search/replace blocks ------------------------------------------------------------------------


def _marker(line: str, char: str, word: str) -> bool:
    """Whether `line` is 5-9 `char`s, then `word` (if any), then only blanks: `<<<<<<< SEARCH`."""
    text = line.rstrip()
    run = len(text) - len(text.lstrip(char))
    return 5 <= run <= 9 and text[run:].strip() == word and (not word or text[run : run + 1] == " ")


def _search_replace_blocks(reply: str) -> list[_Block]:
    blocks: list[_Block] = []
    state = ""  # "", "search" or "replace"
    name: str | None = None  # the last non-blank line outside blocks, fences aside
    added = 0
    block = _Block(0, None, [], [])
    for line in _split(reply):
        if not state:
            if _marker(line, "<", "SEARCH"):
                if len(blocks) == MAX_EDIT_BLOCKS:
                    raise TooLarge(
                        f"The reply holds more than {MAX_EDIT_BLOCKS} search/replace blocks; "
                        "send a much smaller fix."
                    )
                block = _Block(len(blocks) + 1, _file_name(name), [], [])
                state, name = "search", None
            elif _marker(line, "=", "") or _marker(line, ">", "REPLACE"):
                if blocks:  # a stray marker after blocks; before any, the reply is something else
                    raise MalformedDiff(
                        f"The search/replace blocks are malformed: a {line.strip()} line after "
                        f"block {len(blocks)} opens no block; start each with <<<<<<< SEARCH."
                    )
            elif line.strip() and _fence(line) is None:
                name = line.strip()
        elif state == "search":
            if _marker(line, "=", ""):
                state = "replace"
            elif _marker(line, "<", "SEARCH") or _marker(line, ">", "REPLACE"):
                raise _unclosed(block.number, "its SEARCH section has no ======= line")
            else:
                block.search.append(line)
        elif _marker(line, ">", "REPLACE"):
            blocks.append(block)
            state = ""
        elif _marker(line, "<", "SEARCH") or _marker(line, "=", ""):
            raise _unclosed(block.number, "it does not end with >>>>>>> REPLACE")
        else:
            added += 1
            if added > MAX_ADDED_LINES:
                raise _too_large()
            block.replace.append(line)
    if state:
        raise _unclosed(block.number, "it does not end with >>>>>>> REPLACE")
    return blocks


def _unclosed(number: int, problem: str) -> MalformedDiff:
    return MalformedDiff(
        f"Search/replace block {number} is malformed: {problem}; write each block as "
        "<<<<<<< SEARCH, the lines to replace, =======, the new lines, >>>>>>> REPLACE."
    )


def _too_large() -> TooLarge:
    return TooLarge(
        f"The edit is too large: it adds more than {MAX_ADDED_LINES:,} lines, the most a patch "
        "may add; send a much smaller fix."
    )


def _file_name(line: str | None) -> str | None:
    """The file a line before a block names (`x.py`, `**src/x.py**`, `# x.py:`), if it is one."""
    if line is None:
        return None
    name = line.strip(_NAME_NOISE)
    if not name or any(c.isspace() for c in name) or not ("." in name or "/" in name):
        return None  # prose ("Here is the fix:"), not a file name
    return diff_text.base_name(name)


def _check_names(blocks: Sequence[_Block], target: str) -> None:
    names = list(dict.fromkeys(block.name for block in blocks if block.name is not None))
    if len(names) > 1:
        listed = ", ".join(names)
        raise MultipleFiles(
            f"The search/replace blocks edit {len(names)} files ({listed}); edit only {target}."
        )
    if names and names[0] != target:
        raise WrongFile(
            f"The search/replace blocks edit {names[0]}, not {target}; edit only {target}."
        )


def _apply_blocks(original: str, blocks: Sequence[_Block]) -> str:
    """Each block applied in turn: its SEARCH lines, found once, become its REPLACE lines."""
    lines = diff_text.split_lines(original)
    for block in blocks:
        if not any(line.strip() for line in block.search):
            raise MalformedDiff(
                f"Search/replace block {block.number} has an empty SEARCH section; copy the "
                "lines it replaces exactly from the current file."
            )
        keys = [_key(line) for line in lines]
        start = _find(keys, block.search, block.number, lambda key: key)
        replace = block.replace
        if start is None:
            start = _find(keys, block.search, block.number, str.lstrip)
            if start is None:
                raise ContextMismatch(
                    f"Search/replace block {block.number}'s SEARCH lines match nowhere in the "
                    "file; copy them exactly from the current file."
                )
            replace = _reindent(keys[start : start + len(block.search)], block, start)
        end = start + len(block.search)
        lines[start:end] = _with_endings(lines, start, end, replace, original)
    return "".join(lines)


def _find(
    keys: list[str], search: list[str], number: int, norm: Callable[[str], str]
) -> int | None:
    """The one line where `search` starts in `keys`, both mapped by `norm`; None if nowhere."""
    hay = "\n" + "\n".join(map(norm, keys)) + "\n"
    needle = "\n" + "\n".join(map(norm, search)) + "\n"
    found = hay.find(needle)
    if found < 0:
        return None
    again = hay.find(needle, found + 1)
    if again >= 0:
        first, second = hay.count("\n", 0, found) + 1, hay.count("\n", 0, again) + 1
        loosely = "" if norm is not str.lstrip else ", ignoring indentation,"
        raise ContextMismatch(
            f"Search/replace block {number}'s SEARCH lines match the file{loosely} at lines "
            f"{first} and {second}; include more lines so they match once."
        )
    return hay.count("\n", 0, found)


def _reindent(found: list[str], block: _Block, start: int) -> list[str]:
    """The REPLACE lines indented as the file is where the SEARCH lines matched but for indentation.

    As aider does: the indentation common to SEARCH and REPLACE is dropped, and the file's
    (the same for every line) put in its place.
    """
    texts = [line for line in (*block.search, *block.replace) if line.strip()]
    cut = min(len(line) - len(line.lstrip()) for line in texts)
    prefix: str | None = None
    for file_line, line in zip(found, block.search, strict=True):
        if not line.strip():
            continue
        rest = line[cut:]
        here = file_line[: len(file_line) - len(rest)]
        if not file_line.endswith(rest) or (prefix is not None and here != prefix):
            raise ContextMismatch(
                f"Search/replace block {block.number}'s SEARCH lines match line {start + 1} "
                "only with different indentation, and not by the same amount on every line; "
                "copy them exactly from the current file."
            )
        prefix = here
    return [(prefix or "") + line[cut:] if line.strip() else line for line in block.replace]


# -- one code block rewriting the allowed span ----------------------------------------------------


def _fence(line: str) -> tuple[str, int, str] | None:
    """An opening or closing fence: (its character, its length, its info string), or None."""
    body = line.lstrip(" ")
    if len(line) - len(body) > 3 or body[:3] not in ("```", "~~~"):
        return None
    run = len(body) - len(body.lstrip(body[0]))
    info = body[run:].strip()
    if body[0] == "`" and "`" in info:
        return None  # inline code, not a fence
    return body[0], run, info


def _span_block(
    reply: str,
    target: str,
    spec: languages.LanguageSpec | None,
    language: str | None,
    path: str | None,
) -> list[str] | None:
    """The lines of the reply's one fenced code block, or None when it holds no such block."""
    count, body, info = 0, list[str](), ""
    opened: tuple[str, int, str] | None = None
    for line in _split(reply):
        fence = _fence(line)
        if opened is None:
            if fence is not None:
                opened, count = fence, count + 1
                info = fence[2] if count == 1 else info
            continue
        if fence is not None and fence[0] == opened[0] and fence[1] >= opened[1] and not fence[2]:
            opened = None
        elif count == 1:
            if len(body) == MAX_ADDED_LINES:
                raise _too_large()
            body.append(line)
    if count == 0:
        return None
    if opened is not None:
        raise MalformedDiff(
            "The reply's code block is not closed; send the whole block and its closing fence."
        )
    if count > 1:
        raise NoDiff(
            f"The reply holds {count} code blocks and no diff; answer with one ```diff block, "
            f"search/replace blocks, or the allowed lines rewritten in one code block."
        )
    label = info.split()[0].lower() if info else ""
    if label in _DIFF_INFOS or _looks_like_a_diff(body):
        return None  # a diff with no readable hunks: refused as no diff, never a rewrite
    if not _names_language(label, target, spec, language, path):
        name = spec.name if spec is not None else target
        raise NoDiff(
            f"The reply's code block is marked {label}, not {name}; rewrite the allowed lines "
            f"of {target} in one code block, or send a unified diff."
        )
    return body


def _looks_like_a_diff(body: list[str]) -> bool:
    return any(
        line.startswith("@@")
        or (line.startswith("--- ") and k + 1 < len(body) and body[k + 1].startswith("+++ "))
        for k, line in enumerate(body)
    )


def _names_language(
    label: str,
    target: str,
    spec: languages.LanguageSpec | None,
    language: str | None,
    path: str | None,
) -> bool:
    """Whether a fence's label is the file's language, or none in particular."""
    if label in _GENERIC_INFOS or diff_text.base_name(label) == target.lower():
        return True
    if "." in label or "/" in label:  # a file name as the label: its extension says
        return spec is not None and languages.resolve(None, label) == spec
    bare = label.rstrip("0123456789") or label  # python3
    if spec is not None:
        return languages.resolve(bare) == spec
    known = {(language or "").lower(), target.rpartition(".")[2].lower()}
    return bare in known or label in known or (path is not None and label == path.lower())


def _replace_span(original: str, allowed: Sequence[LineRange], body: list[str]) -> str:
    """`original` with the lines from the first allowed one to the last replaced by `body`."""
    lines = diff_text.split_lines(original)
    start = min(r.start for r in allowed) if allowed else 0
    end = max(r.end for r in allowed) + 1 if allowed else len(lines)
    start, end = min(start, len(lines)), min(end, len(lines))
    lines[start:end] = _with_endings(lines, start, end, body, original)
    return "".join(lines)


# -- lines -----------------------------------------------------------------------------------------


def _key(line: str) -> str:
    """A line without its ending ("\\n", "\\r\\n")."""
    line = line[:-1] if line.endswith("\n") else line
    return line[:-1] if line.endswith("\r") else line


def _with_endings(
    lines: list[str], start: int, end: int, new: list[str], original: str
) -> list[str]:
    """`new` (lines without endings) ending as the lines they replace, lines[start:end], do."""
    ending = "\r\n" if 2 * original.count("\r\n") > original.count("\n") else "\n"
    for line in (lines[start : start + 1] or lines[start - 1 : start]) if lines else ():
        if line.endswith("\n"):
            ending = "\r\n" if line.endswith("\r\n") else "\n"
    out = [line + ending for line in new]
    if out and end == len(lines) and lines and not lines[-1].endswith("\n"):
        out[-1] = new[-1]  # the file ended without a newline, and still does
    return out


def _split(text: str) -> Iterator[str]:
    """`text.split("\\n")`, a line at a time: a refused reply never has all its lines in memory."""
    start = 0
    while (end := text.find("\n", start)) != -1:
        yield text[start:end]
        start = end + 1
    yield text[start:]
