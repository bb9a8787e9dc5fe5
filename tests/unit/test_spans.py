"""Span extraction: the smallest enclosing function, method or class per language, else a window."""

from __future__ import annotations

import pytest

from ace_lsp.orchestrator.code import spans
from ace_lsp.orchestrator.code.source import Source
from ace_lsp.orchestrator.types import LineRange, Position, TextRange

PYTHON = """\
import os

CONSTANT = 1


@decorator
@other(arg=1)
def decorated(x):
    return x + 1


class Greeter(Base):
    \"\"\"Says hello.\"\"\"

    greeting = "hi"

    def greet(self, name):
        def shout(s):
            return s.upper()
        return shout(self.greeting + name)

    @staticmethod
    async def fetch(url):
        return await get(url)


def outer():
    def inner():
        return 1
    return inner()


print(outer())
"""

JAVASCRIPT = """\
import { api } from "./api";

export function load(id) {
  return api.get(id).then((res) => {
    return res.data;
  });
}

const handler = async (event) => {
  return event.body;
};

export const format = function (value) {
  return String(value);
};

class Store extends Base {
  items = [];
  onChange = () => {
    this.emit("change");
  };

  add(item) {
    this.items.push(item);
  }
}

function* ids() {
  yield 1;
}

load(1);
"""

TYPESCRIPT = """\
import { Injectable } from "@angular/core";

interface Shape {
  area(): number;
}

@Injectable()
export class Circle implements Shape {
  constructor(private r: number) {}

  @memo()
  area(): number {
    return Math.PI * this.r ** 2;
  }
}

export abstract class Base<T> {
  abstract get(): T;
  describe(): string {
    return "base";
  }
}

export const double = (n: number): number => {
  return n * 2;
};

export default function (): void {
  console.log("default");
}
"""

TSX = """\
import React from "react";

type Props = { name: string };

export const Hello = ({ name }: Props) => {
  const onClick = () => alert(name);
  return <button onClick={onClick}>Hello {name}</button>;
};

export function App() {
  return (
    <div>
      {["a", "b"].map((n) => (
        <Hello key={n} name={n} />
      ))}
    </div>
  );
}

class Counter extends React.Component<Props> {
  render() {
    return <span>{this.props.name}</span>;
  }
}
"""

GO = """\
package shapes

import "math"

// Circle is round.
type Circle struct {
\tR float64
}

type Shape interface {
\tArea() float64
}

func (c *Circle) Area() float64 {
\treturn math.Pi * c.R * c.R
}

func NewCircle(r float64) *Circle {
\tcheck := func() bool {
\t\treturn r > 0
\t}
\tif !check() {
\t\treturn nil
\t}
\treturn &Circle{R: r}
}

var Unit = NewCircle(1)
"""

RUST = """\
use std::fmt;

/// A point.
#[derive(Debug, Clone)]
pub struct Point {
    x: i32,
    y: i32,
}

impl Point {
    pub fn new(x: i32, y: i32) -> Self {
        Point { x, y }
    }

    fn norm(&self) -> f64 {
        fn square(v: i32) -> f64 {
            (v * v) as f64
        }
        (square(self.x) + square(self.y)).sqrt()
    }
}

trait Shape {
    fn area(&self) -> f64;
}

enum Kind {
    Round,
}

#[test]
fn it_works() {
    assert_eq!(2 + 2, 4);
}

const LIMIT: u32 = 10;
"""

JAVA = """\
package com.example;

import java.util.List;

@Service
public class Account {
    private long balance;

    public Account(long initial) {
        this.balance = initial;
    }

    @Override
    public String toString() {
        return "Account(" + balance + ")";
    }

    interface Listener {
        void changed(long value);
    }

    enum State { OPEN, CLOSED }

    record Entry(long amount) {}
}
"""

C = """\
#include <stdio.h>

struct point {
    int x;
    int y;
};

typedef struct {
    double r;
} circle;

static int *find(int *xs, int n) {
    for (int i = 0; i < n; i++) {
        if (xs[i] == 0) return &xs[i];
    }
    return NULL;
}

int main(void) {
    printf("hi\\n");
    return 0;
}
"""

CPP = """\
#include <vector>

namespace geo {

template <typename T>
class Box {
 public:
  explicit Box(T v) : value_(v) {}
  T get() const {
    return value_;
  }

 private:
  T value_;
};

struct Pair {
  int a, b;
  int sum() const { return a + b; }
};

template <typename T>
T twice(T v) {
  auto f = [](T x) { return x * 2; };
  return f(v);
}

int Pair::product() const { return a * b; }

}  // namespace geo
"""

RUBY = """\
require "json"

module Billing
  class Invoice < Base
    TAX = 0.2

    def total
      items.sum { |i| i.price * (1 + TAX) }
    end

    def self.load(path)
      new(JSON.parse(File.read(path)))
    end
  end

  def self.helper
    :ok
  end
end

def top_level(x)
  x * 2
end

puts top_level(1)
"""


def at(text: str, needle: str) -> TextRange:
    """The LSP range (UTF-16 columns) of the first occurrence of `needle` in `text`."""
    for row, line in enumerate(text.split("\n")):
        col = line.find(needle)
        if col >= 0:
            start = len(line[:col].encode("utf-16-le")) // 2
            end = start + len(needle.encode("utf-16-le")) // 2
            return TextRange(Position(row, start), Position(row, end))
    raise AssertionError(f"{needle!r} not in fixture")


def check_bytes(source: Source, span: spans.Span) -> None:
    """Byte offsets must slice exactly the span's lines out of source.data."""
    assert 0 <= span.start_byte <= span.end_byte <= len(source.data)
    if span.kind == "window":
        assert span.start_byte == source.line_start_byte(span.start_line)
        assert span.end_byte == source.line_start_byte(span.end_line + 1)
    else:
        assert source.line_of_byte(span.start_byte) == span.start_line
        assert source.line_of_byte(span.end_byte - 1) == span.end_line
        assert not source.data[span.start_byte : span.end_byte].isspace()


FIXTURES = {
    "python": PYTHON,
    "javascript": JAVASCRIPT,
    "typescript": TYPESCRIPT,
    "tsx": TSX,
    "go": GO,
    "rust": RUST,
    "java": JAVA,
    "c": C,
    "cpp": CPP,
    "ruby": RUBY,
}


def case(
    language: str, needle: str, kind: str, name: str | None, lines: tuple[int, int], id: str
) -> pytest.ParameterSet:
    """Expect `needle`'s range in the language's fixture to resolve to (kind, name, lines)."""
    return pytest.param(language, needle, False, kind, name, lines, id=id)


def encl(
    language: str, needle: str, kind: str, name: str | None, lines: tuple[int, int], id: str
) -> pytest.ParameterSet:
    """Like `case`, with enclosing_class=True."""
    return pytest.param(language, needle, True, kind, name, lines, id=id)


CASES = [
    # python
    case("python", "return x + 1", "function", "decorated", (5, 8), "py-decorated-body"),
    case("python", "@other(arg=1)", "function", "decorated", (5, 8), "py-decorator-line"),
    case("python", 'greeting = "hi"', "class", "Greeter", (11, 23), "py-class-attr"),
    case("python", "def greet(self, name):", "method", "greet", (16, 19), "py-method-header"),
    case("python", "return shout(", "method", "greet", (16, 19), "py-method"),
    encl("python", "return shout(", "class", "Greeter", (11, 23), "py-method-enclosing"),
    case("python", "return s.upper()", "function", "shout", (17, 18), "py-nested-in-method"),
    encl("python", "return s.upper()", "function", "shout", (17, 18), "py-nested-enclosing"),
    case("python", "await get(url)", "method", "fetch", (21, 23), "py-decorated-async-method"),
    case("python", "return 1", "function", "inner", (27, 28), "py-nested-smallest"),
    case("python", "print(outer())", "window", None, (12, 32), "py-module-level"),
    case("python", "CONSTANT = 1", "window", None, (0, 22), "py-module-top"),
    # javascript
    case("javascript", "return res.data", "function", "load", (2, 6), "js-callback-in-export"),
    case("javascript", "return event.body", "function", "handler", (8, 10), "js-const-arrow"),
    case("javascript", "return String", "function", "format", (12, 14), "js-export-const-fn"),
    case("javascript", "this.emit", "method", "onChange", (18, 20), "js-field-arrow"),
    case("javascript", "this.items.push", "method", "add", (22, 24), "js-method"),
    encl("javascript", "this.items.push", "class", "Store", (16, 25), "js-method-enclosing"),
    case("javascript", "items = [];", "class", "Store", (16, 25), "js-class-field"),
    case("javascript", "yield 1", "function", "ids", (27, 29), "js-generator"),
    case("javascript", "load(1);", "window", None, (11, 31), "js-module-level"),
    # typescript
    case("typescript", "Math.PI", "method", "area", (10, 13), "ts-decorated-method"),
    case("typescript", "@memo()", "method", "area", (10, 13), "ts-method-decorator-line"),
    encl("typescript", "Math.PI", "class", "Circle", (6, 14), "ts-enclosing-decorated-class"),
    case("typescript", "private r", "method", "constructor", (8, 8), "ts-constructor"),
    case("typescript", "area(): number;", "window", None, (0, 23), "ts-interface-not-scope"),
    case("typescript", 'return "base"', "method", "describe", (18, 20), "ts-abstract-class-method"),
    case("typescript", "abstract get", "class", "Base", (16, 21), "ts-abstract-class"),
    case("typescript", "return n * 2", "function", "double", (23, 25), "ts-export-const-arrow"),
    case("typescript", "console.log", "function", None, (27, 29), "ts-export-default-fn"),
    # tsx
    case("tsx", "return <button", "function", "Hello", (4, 7), "tsx-component"),
    case("tsx", "alert(name)", "function", "onClick", (5, 5), "tsx-nested-bound-arrow"),
    case("tsx", "<Hello key", "function", "App", (9, 17), "tsx-inline-callback"),
    case("tsx", "return <span>", "method", "render", (20, 22), "tsx-method"),
    encl("tsx", "return <span>", "class", "Counter", (19, 23), "tsx-method-enclosing"),
    case("tsx", "type Props", "window", None, (0, 22), "tsx-module-level"),
    # go
    case("go", "return math.Pi", "method", "Area", (13, 15), "go-method"),
    encl("go", "return math.Pi", "method", "Area", (13, 15), "go-method-no-enclosing"),
    case("go", "R float64", "class", "Circle", (5, 7), "go-struct"),
    case("go", "Area() float64", "class", "Shape", (9, 11), "go-interface"),
    case("go", "return r > 0", "function", "NewCircle", (17, 25), "go-func-literal"),
    case("go", "var Unit", "window", None, (7, 27), "go-module-level"),
    # rust
    case("rust", "y: i32", "class", "Point", (3, 7), "rs-struct-with-attribute"),
    case("rust", "Point { x, y }", "method", "new", (10, 12), "rs-impl-method"),
    encl("rust", "Point { x, y }", "class", "Point", (9, 20), "rs-method-enclosing"),
    case("rust", "(v * v)", "function", "square", (15, 17), "rs-nested-fn"),
    case("rust", "(square(self.x)", "method", "norm", (14, 19), "rs-method-outer"),
    case("rust", "fn area", "class", "Shape", (22, 24), "rs-trait"),
    case("rust", "Round", "class", "Kind", (26, 28), "rs-enum"),
    case("rust", "assert_eq!", "function", "it_works", (30, 33), "rs-attributed-fn"),
    case("rust", "#[test]", "function", "it_works", (30, 33), "rs-attribute-line"),
    case("rust", "const LIMIT", "window", None, (15, 35), "rs-module-level"),
    # java
    case("java", "private long balance", "class", "Account", (4, 24), "java-field"),
    case("java", "this.balance = initial", "method", "Account", (8, 10), "java-constructor"),
    encl("java", "this.balance = initial", "class", "Account", (4, 24), "java-enclosing"),
    case("java", 'return "Account("', "method", "toString", (12, 15), "java-annotated-method"),
    case("java", "void changed", "class", "Listener", (17, 19), "java-interface"),
    case("java", "OPEN, CLOSED", "class", "State", (21, 21), "java-enum"),
    case("java", "record Entry", "class", "Entry", (23, 23), "java-record"),
    case("java", "import java.util.List", "window", None, (0, 22), "java-module-level"),
    # c
    case("c", "int y;", "class", "point", (2, 5), "c-struct"),
    case("c", "double r", "class", "circle", (7, 9), "c-typedef-struct"),
    case("c", "return &xs[i]", "function", "find", (11, 16), "c-pointer-function"),
    encl("c", "return &xs[i]", "function", "find", (11, 16), "c-function-enclosing"),
    case("c", "printf", "function", "main", (18, 21), "c-main"),
    case("c", "#include", "window", None, (0, 20), "c-module-level"),
    # cpp
    case("cpp", "return value_", "method", "get", (8, 10), "cpp-method"),
    encl("cpp", "return value_", "class", "Box", (4, 14), "cpp-template-class"),
    case("cpp", "T value_;", "class", "Box", (4, 14), "cpp-class-member"),
    case("cpp", "value_(v)", "method", "Box", (7, 7), "cpp-constructor"),
    case("cpp", "return a + b", "method", "sum", (18, 18), "cpp-struct-method"),
    encl("cpp", "return a + b", "class", "Pair", (16, 19), "cpp-struct-enclosing"),
    case("cpp", "return x * 2", "function", "twice", (21, 25), "cpp-template-fn-lambda"),
    case("cpp", "return a * b", "function", "Pair::product", (27, 27), "cpp-out-of-line"),
    case("cpp", "#include", "window", None, (0, 20), "cpp-module-level"),
    # ruby
    case("ruby", "i.price", "method", "total", (6, 8), "rb-method"),
    encl("ruby", "i.price", "class", "Invoice", (3, 13), "rb-method-enclosing"),
    case("ruby", "JSON.parse", "method", "load", (10, 12), "rb-singleton-method"),
    case("ruby", "TAX = 0.2", "class", "Invoice", (3, 13), "rb-class-constant"),
    case("ruby", ":ok", "method", "helper", (15, 17), "rb-module-method"),
    encl("ruby", ":ok", "class", "Billing", (2, 18), "rb-module-enclosing"),
    case("ruby", "x * 2", "function", "top_level", (20, 22), "rb-top-level-def"),
    case("ruby", "puts", "window", None, (4, 24), "rb-module-level"),
]


@pytest.mark.parametrize(("language", "needle", "enclosing", "kind", "name", "lines"), CASES)
def test_extract(
    language: str,
    needle: str,
    enclosing: bool,
    kind: str,
    name: str | None,
    lines: tuple[int, int],
) -> None:
    text = FIXTURES[language]
    start, end = lines
    source = Source(text)
    tree = spans.parse(source, language)
    assert tree is not None
    span = spans.extract(source, language, at(text, needle), tree=tree, enclosing_class=enclosing)
    assert (span.kind, span.name, span.start_line, span.end_line) == (kind, name, start, end)
    assert span.language == language
    assert span.lines == LineRange(start, end)
    assert (span.node_type is None) == (kind == "window")
    check_bytes(source, span)
    # Parsing inside extract gives the same answer as a tree given by the caller.
    assert spans.extract(text, language, at(text, needle), enclosing_class=enclosing) == span


@pytest.mark.parametrize(
    ("language", "path", "expected"),
    [
        pytest.param("python", None, "python", id="language-id"),
        pytest.param("py", None, "python", id="bare-extension"),
        pytest.param(".py", None, "python", id="dotted-extension"),
        pytest.param(None, "src/app/greeter.py", "python", id="path-extension"),
        pytest.param("plaintext", "greeter.pyi", "python", id="unknown-id-falls-back-to-path"),
    ],
)
def test_resolution(language: str | None, path: str | None, expected: str) -> None:
    span = spans.extract(PYTHON, language, at(PYTHON, "return s.upper()"), path=path)
    assert (span.kind, span.name, span.language) == ("function", "shout", expected)


@pytest.mark.parametrize(
    ("language", "text", "needle", "name"),
    [
        pytest.param("typescriptreact", TSX, "return <span>", "render", id="typescriptreact"),
        pytest.param("golang", GO, "return math.Pi", "Area", id="golang"),
        pytest.param("c++", CPP, "return value_", "get", id="c++"),
        pytest.param("rb", RUBY, "i.price", "total", id="rb"),
    ],
)
def test_resolution_other_ids(language: str, text: str, needle: str, name: str) -> None:
    assert spans.extract(text, language, at(text, needle)).name == name


@pytest.mark.parametrize("language", [None, "cobol", ".txt"])
def test_unknown_language_is_window(language: str | None) -> None:
    span = spans.extract(PYTHON, language, at(PYTHON, "return s.upper()"), window=3)
    assert (span.kind, span.name, span.language) == ("window", None, None)
    assert (span.start_line, span.end_line) == (15, 21)
    check_bytes(Source(PYTHON), span)


def test_parse_unknown_language() -> None:
    assert spans.parse(Source(PYTHON), "cobol") is None


@pytest.mark.parametrize(
    ("rng", "kind", "name", "start", "end"),
    [
        pytest.param(TextRange.lines(16, 17), "method", "greet", 16, 19, id="end-col0-next-line"),
        pytest.param(TextRange.lines(19, 20), "method", "greet", 16, 19, id="last-line-of-method"),
        pytest.param(TextRange.lines(8), "function", "decorated", 5, 8, id="empty-at-col0"),
        pytest.param(TextRange.lines(15), "class", "Greeter", 11, 23, id="blank-line-in-class"),
        pytest.param(TextRange.lines(16, 24), "class", "Greeter", 11, 23, id="two-methods"),
        pytest.param(
            TextRange(Position(18, 0), Position(18, 10_000)),
            "function",
            "shout",
            17,
            18,
            id="whole-line-overlong-end",
        ),
        pytest.param(
            TextRange(Position(500, 3), Position(900, 0)), "window", None, 12, 32, id="past-eof"
        ),
    ],
)
def test_range_shapes(rng: TextRange, kind: str, name: str | None, start: int, end: int) -> None:
    span = spans.extract(PYTHON, "python", rng)
    assert (span.kind, span.name, span.start_line, span.end_line) == (kind, name, start, end)


def test_window_size_and_clipping() -> None:
    source = Source(PYTHON)
    span = spans.extract(source, "python", at(PYTHON, "CONSTANT"), window=1)
    assert (span.kind, span.start_line, span.end_line) == ("window", 1, 3)
    assert source.data[span.start_byte : span.end_byte] == b"\nCONSTANT = 1\n\n"


def test_empty_file() -> None:
    span = spans.extract("", "python", TextRange.lines(0))
    assert (span.kind, span.start_line, span.end_line, span.start_byte, span.end_byte) == (
        "window",
        0,
        0,
        0,
        0,
    )


def test_last_line_without_newline() -> None:
    text = "x = 1\ny = 2"
    span = spans.extract(text, "python", TextRange.lines(1), window=5)
    assert (span.start_line, span.end_line, span.end_byte) == (0, 1, len(text))


def test_utf16_columns_after_emoji() -> None:
    # If columns were taken as bytes, the range would land inside the string literal instead.
    text = 'const s = "🎉🎉🎉🎉🎉🎉"; function f() { return 1; }\n'
    source = Source(text)
    span = spans.extract(source, "javascript", at(text, "f()"))
    assert (span.kind, span.name) == ("function", "f")
    assert source.data[span.start_byte : span.end_byte] == b"function f() { return 1; }"
    literal = spans.extract(source, "javascript", at(text, '"🎉'))
    assert literal.kind == "window"


def test_non_ascii_before_range_python() -> None:
    text = 'class Café:\n    def naïve(self):\n        s = "🎉é"; return s\n'
    span = spans.extract(text, "python", at(text, "return s"))
    assert (span.kind, span.name, span.start_line, span.end_line) == ("method", "naïve", 1, 2)
    check_bytes(Source(text), span)
    assert spans.extract(text, "python", at(text, "return s"), enclosing_class=True).name == "Café"


def test_crlf() -> None:
    text = PYTHON.replace("\n", "\r\n")
    source = Source(text)
    span = spans.extract(source, "python", at(text, "return x + 1"))
    assert (span.kind, span.name, span.start_line, span.end_line) == ("function", "decorated", 5, 8)
    body = source.data[span.start_byte : span.end_byte]
    assert body.startswith(b"@decorator\r\n") and body.endswith(b"return x + 1")
    method = spans.extract(source, "python", TextRange.lines(16, 17))
    assert (method.name, method.start_line, method.end_line) == ("greet", 16, 19)
    window = spans.extract(source, "python", at(text, "CONSTANT"), window=0)
    assert source.data[window.start_byte : window.end_byte] == b"CONSTANT = 1\r\n"


def test_span_is_frozen() -> None:
    span = spans.extract(PYTHON, "python", at(PYTHON, "return 1"))
    with pytest.raises(AttributeError):
        span.kind = "class"  # type: ignore[misc]


GO_GROUP = "package p\n\ntype (\n\tA struct{ x int }\n\tB int\n)\n"


@pytest.mark.parametrize(
    ("language", "text", "line", "kind", "name", "lines"),
    [
        pytest.param(
            "go",
            GO_GROUP,
            4,
            "window",
            None,
            (4, 4),
            id="go-group-other-spec",
        ),
        pytest.param(
            "go",
            GO_GROUP,
            3,
            "class",
            "A",
            (3, 3),
            id="go-group-struct-spec",
        ),
        pytest.param(
            "javascript",
            "const x = 1, f = () => {\n  return x;\n};\n",
            1,
            "function",
            "f",
            (0, 2),
            id="js-multi-declarator",
        ),
        pytest.param(
            "python",
            "x = [\n    lambda: 1,\n]\n",
            1,
            "window",
            None,
            (1, 1),
            id="py-lambda-not-scope",
        ),
    ],
)
def test_grouped_declarations_stay_separate(
    language: str, text: str, line: int, kind: str, name: str | None, lines: tuple[int, int]
) -> None:
    span = spans.extract(text, language, TextRange.lines(line), window=0)
    assert (span.kind, span.name, (span.start_line, span.end_line)) == (kind, name, lines)
    check_bytes(Source(text), span)
