"""Secret-shaped text masked out of code before it is sent to a provider.

`mask(text)` finds private key blocks (PEM, PuTTY), vendor tokens (AWS, OpenAI, Anthropic, Google,
GitHub, GitLab, Slack, Stripe, npm, Hugging Face, SendGrid, Twilio, JWTs, Azure and more: the table
in `code.secret_rules`), passwords in URLs (`postgres://user:…@host`), `Bearer …`/`Basic …`
credentials, values assigned to secret-named keys (`DB_PASS = "…"`, `"api_key": …`, the default
of `os.environ.get("TOKEN", "…")`) and high-entropy strings (an AWS secret key in any variable),
and replaces the secret's characters — only those — with a placeholder of the same length, such
as `sk-«masked:openai-key»•••••`. Everything else stays verbatim: the text keeps its lines (line
breaks are never replaced), every line keeps its length in characters (and in UTF-16 units: the
secrets matched are ASCII and the placeholder's characters are in the BMP), so line numbers and
columns in a prompt still match the file.

A model never sees a secret, so it never needs to write one: a reply whose diff quotes a masked
line (as context or as a removed line) carries the placeholder, which does not match the original
text, and the patch gate refuses it (context mismatch). That is the safe outcome: the fix falls
back to another model or fails with a clear reason; a placeholder is never written into a file.

Where the rules come from: vendor shapes from gitleaks and detect-secrets (see `secret_rules`); the
keyword rule follows gitleaks' `generic-api-key` and detect-secrets' `KeywordDetector` (the key's
name must end with the keyword, so `password_hint` and `max_tokens` are left alone); the entropy
rule is detect-secrets' `Base64HighEntropyString`/`HexHighEntropyString` with its limits (4.5 and
3.0 bits per character), applied to whole tokens that stand where a value stands. Neither library
is imported: detect-secrets' patterns backtrack for seconds on hostile lines, its API reports
values line by line rather than spans, and it costs 0.28 s to import; gitleaks is Go.

Time is linear in the text. Every pattern is a literal, or a lookbehind that lets a match start
only where a run of its characters starts, followed by greedy runs that end where their character
class ends (or by a few bounded repeats); lengths, entropy and context are checked in plain code.
tests/unit/test_secrets.py times every pattern on adversarial input.

`Finding.line` is 0-based, like every line number inside ACE.
"""

from __future__ import annotations

import binascii
import math
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import pairwise

from ace_lsp.orchestrator.code.secret_rules import RULES, alnum_mix, mixed_case

MASK = "•"


@dataclass(frozen=True)
class Finding:
    """One secret found: its kind and the line where it starts."""

    kind: str  # "private-key", "aws-key", "openai-key", "url-password", "secret", "high-entropy", …
    line: int  # 0-based line where the secret starts


@dataclass(frozen=True)
class Masked:
    """What mask() returns: the text, secrets replaced by same-length placeholders, and findings."""

    text: str
    found: tuple[Finding, ...]


def placeholder(kind: str, n: int) -> str:
    """Exactly `n` characters: `«masked:<kind>»` padded with `•`, or only `•` when too short."""
    label = f"«masked:{kind}»"
    return label + MASK * (n - len(label)) if len(label) <= n else MASK * n


# -- private key blocks --------------------------------------------------------------------------

_PEM_BEGIN = re.compile(
    r"-----BEGIN (?:[A-Z0-9]+ ){0,3}PRIVATE KEY(?: BLOCK)?-----"
    r"|---- BEGIN SSH2 ENCRYPTED PRIVATE KEY ----|\bPrivate-Lines: [0-9]{1,5}"  # PuTTY .ppk
)
_PEM_END = re.compile(
    r"-----END (?:[A-Z0-9]+ ){0,3}PRIVATE KEY(?: BLOCK)?-----"
    r"|---- END SSH2 ENCRYPTED PRIVATE KEY ----"
)
_BASE64 = re.compile(r"(?<!\\)[A-Za-z0-9+/=]+")
_BASE64_CORE = re.compile(r"[A-Za-z0-9+/=]{16,}")
_LINE_JUNK = " \t\r\"'`+,;()"  # around a key line quoted in code: quotes, `+`, commas, parens


def _base64_line(line: str) -> bool:
    """A line that is only (quoted, concatenated, `\\n`-escaped) base64: how a key block goes on."""
    core = line.strip(_LINE_JUNK)
    while core.startswith("\\n"):
        core = core[2:].lstrip(_LINE_JUNK)
    while core.endswith("\\n"):
        core = core[:-2].rstrip(_LINE_JUNK)
    return _BASE64_CORE.fullmatch(core) is not None


def _pem_spans(text: str) -> list[tuple[int, int]]:
    """The bodies of private key blocks: between BEGIN and END, or the base64 lines after BEGIN."""
    spans: list[tuple[int, int]] = []
    pos = 0
    ends = True  # False once no END line follows some BEGIN: then none follows a later one
    while (begin := _PEM_BEGIN.search(text, pos)) is not None:
        putty = begin.group().startswith("Private-Lines")  # a .ppk file has no END line
        end = _PEM_END.search(text, begin.end()) if ends and not putty else None
        if end is not None:
            spans.append((begin.end(), end.start()))
            pos = end.end()
            continue
        ends = ends and putty
        # no END line (a truncated block): the rest of BEGIN's line (a key inlined with `\n`
        # escapes) and the base64-only lines that follow
        stop = text.find("\n", begin.end())
        body_end = len(text) if stop == -1 else stop
        while stop != -1:
            nxt = text.find("\n", stop + 1)
            line_end = len(text) if nxt == -1 else nxt
            if not _base64_line(text[stop + 1 : line_end]):
                break
            body_end, stop = line_end, nxt
        spans.append((begin.end(), body_end))
        pos = max(body_end, begin.end())
    return spans


# -- credentials in URLs and headers -------------------------------------------------------------

# detect-secrets BasicAuthDetector: `scheme://user:password@host`; RFC 3986 userinfo characters
_URL_PASSWORD = re.compile(r"://[A-Za-z0-9._~!$&()*+,;=%-]*:(?P<s>[A-Za-z0-9._~!$&()*+,;=:%-]+)@")
# gitleaks curl-auth-header, detect-secrets KeywordDetector's `Bearer`: header values in code
_BEARER = re.compile(r"(?:[Bb]earer|BEARER)(?<=\b.{6})[ \t]+(?P<s>[A-Za-z0-9_~+/.=-]+)")
_BASIC = re.compile(r"(?:[Bb]asic|BASIC)(?<=\b.{5})[ \t]+(?P<s>[A-Za-z0-9+/]+=*)")


_VARIABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _template(value: str) -> bool:
    """`${VAR}`, `$VAR`, `%VAR%`, `<your-key>`, `{password}`, `{{ x }}`, `%(pw)s`: a stand-in."""
    if (value[0], value[-1]) in (("<", ">"), ("{", "}"), ("%", "%")):
        return True
    if value.startswith(("${", "$(", "{{", "%(", "%s")):
        return True
    return value[0] == "$" and _VARIABLE.fullmatch(value, 1) is not None


def _placeholder_like(value: str) -> bool:
    """A template, or `********`, `xxxxxxxx`: not a secret."""
    return _template(value) or len(set(value)) < 3


_URL_STAND_INS = frozenset(("password", "passwd", "pass", "secret", "pwd"))  # in examples, docs


def _url_password(value: str) -> bool:
    # 4 characters at least: a shorter placeholder (`•••`) is one the patch gate cannot tell
    # from text, were a model to write it back (patches.MASK_RUN)
    return (
        len(value) >= 4
        and not _template(value)
        and len(set(value)) > 1
        and value.lower() not in _URL_STAND_INS
    )


def _bearer(value: str) -> bool:
    kinds = (
        any(c.islower() for c in value),
        any(c.isupper() for c in value),
        any(c.isdigit() for c in value),
    )
    return len(value) >= 16 and sum(kinds) >= 2


def _basic(value: str) -> bool:
    """Base64 of `user:password`."""
    if len(value) < 8:
        return False
    try:
        decoded = binascii.a2b_base64(value + "=" * (-len(value) % 4)).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return False
    user, colon, password = decoded.partition(":")
    return bool(colon and user and password and decoded.isprintable())


# -- values of secret-named keys -----------------------------------------------------------------

# The key's name ends with one of these (`DB_PASSWORD`, `apiKey`, `"client_secret"`, `SECRET_KEY`);
# matched in the text lowered (a case-insensitive pattern is 30 times slower in `re`)
_KEYWORD = re.compile(
    r"(?:pass(?:word|wd|phrase|code)?|pwd|secret|token|credentials?|creds|key)(?![a-z0-9_-])"
)
_KEY_OWNERS = tuple(  # `key` alone names too much (`sort(key=…)`, `cache_key`): `api_key` etc.
    owner + sep
    for owner in (
        "api",
        "access",
        "secret",
        "private",
        "account",
        "auth",
        "client",
        "service",
        "signing",
        "encryption",
        "master",
    )
    for sep in ("", "_", "-")
)
_SHORT_KEYWORDS = ("pass", "pwd")  # end many words (bypass, compass): must start a name's word
_UPPER_TO_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
# after the name: a closing quote, a type annotation, the operator (`=`, `:`, `:=`, `=>`, `?=`)
_ASSIGN_OP = re.compile(
    r"""["'`]?[ \t]{0,16}(?::[ \t]{0,8}[A-Za-z_][\w.\[\], |]{0,60}?[ \t]{0,8}(?==))?"""
    r"[ \t]{0,16}(?::=|=>|\|\|=|\?=|=(?![=~])|:(?![:=]))[ \t]{0,16}"
)
_QUOTED = re.compile(r"""[rbuRBU]{0,2}(?P<q>["'`])(?P<s>[!-~]+?)(?P=q)""")
_UNQUOTED = re.compile(r"(?P<s>[A-Za-z0-9_+/.~-]+=*)[ \t]*(?:#.*)?\r?$", re.MULTILINE)
_DOTTED = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+")
# the default of an environment variable: `os.environ.get("DB_PASSWORD", "…")`, `ENV.fetch(…)`
_ENV_DEFAULT = re.compile(
    r"""(?:getenv|environ\.get|environ\.setdefault|ENV\.fetch)\([ \t]*"""
    r"""(?P<nq>["'])(?P<name>[A-Za-z0-9_.-]*)(?P=nq)[ \t]*,[ \t]*(?:default[ \t]*=[ \t]*)?"""
    r"""[rbuRBU]{0,2}(?P<q>["'])(?P<s>[!-~]+?)(?P=q)"""
)
_MIN_VALUE, _MIN_ENV_DEFAULT = 8, 4


def _lowered(text: str) -> str:
    """`text` in lower case, character for character (so that indices still match)."""
    low = text.lower()
    return low if len(low) == len(text) else text.translate(_UPPER_TO_LOWER)


def _secret_names(text: str, low: str) -> Iterator[int]:
    """Where each name that ends with a secret keyword ends (`DB_PASS`, `apiKey`, `"token"`)."""
    for m in _KEYWORD.finditer(low):
        start, word = m.start(), m.group()
        if word == "key":
            if not low.endswith(_KEY_OWNERS, 0, start):
                continue
        elif word in _SHORT_KEYWORDS and start > 0 and text[start - 1].isalnum():
            before = text[start - 1]
            if not ((before.islower() or before.isdigit()) and text[start].isupper()):
                continue  # `bypass`, `compass`; but `dbPass`
        yield m.end()


def _secret_name(name: str) -> bool:
    """An environment variable's name that says it holds a secret (`DB_PASSWORD`, `API_TOKEN`)."""
    return len(name) in _secret_names(name, _lowered(name))


# a value without digits that holds one of these names something (`ACCESS_TOKEN = "access_token"`,
# `PASSWORD: "password"`, `INVALID_PASSWORD = "invalidUserNameOrPassword"`): a constant, no secret
_NAME_WORDS = ("pass", "pwd", "secret", "token", "cred", "key", "auth", "encrypt", "sign")


def _quoted_value(value: str, minimum: int) -> bool:
    if len(value) < minimum or _placeholder_like(value):
        return False
    if value.startswith(("/", "./", "~/")) or "://" in value:
        return False  # a path (`PWD: '/home/ann'`), a URL (its password has its own rule)
    lowered = value.lower()
    return any(c.isdigit() for c in value) or not any(w in lowered for w in _NAME_WORDS)


def _unquoted_value(value: str) -> bool:
    """An unquoted value (YAML, .env) is a token when it mixes letters and digits; not a name."""
    return (
        len(value) >= _MIN_VALUE
        and alnum_mix(value)
        and not _placeholder_like(value)
        and _DOTTED.fullmatch(value) is None
    )


# -- high-entropy strings ------------------------------------------------------------------------

_RUN = re.compile(r"(?<![A-Za-z0-9+/_-])[A-Za-z0-9+/_-]{20,}=*")
_RUN_BEFORE = frozenset(" \t\r\n'\"`=:(,>[{")  # a run that stands where a value stands
_RUN_AFTER = frozenset(" \t\r\n'\"`,;)]}<&\\")
_HEX = frozenset("0123456789abcdef")
_BASE64_STD = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
BASE64_LIMIT, HEX_LIMIT, AWS_SECRET_LIMIT = 4.5, 3.0, 4.0  # bits per character


def entropy(s: str) -> float:
    """Shannon entropy of `s`, in bits per character."""
    n = len(s)
    return -sum(c / n * math.log2(c / n) for c in Counter(s).values())


def _sequential(s: str) -> bool:
    """An alphabet (`abcdefghijklmnopqrstuvwxyz`, `0123456789abcdef`): high entropy, no secret.
    In a random string, about 1 pair of neighbours in 32 is consecutive; here most are."""
    steps = sum(1 for a, b in pairwise(s) if abs(ord(b) - ord(a)) == 1)
    return steps * 2 > len(s)


def _entropy_kind(text: str, start: int, end: int) -> str | None:
    if start > 0 and text[start - 1] not in _RUN_BEFORE:
        return None  # a piece of a path, a URL, a dotted name
    if end < len(text) and text[end] not in _RUN_AFTER:
        return None
    core = text[start:end].rstrip("=")
    if core.startswith("//"):
        return None  # `https://host/…`
    kind: str | None
    if len(core) >= 32 and (set(core.lower()) <= _HEX) and (core.islower() or core.isupper()):
        kind = "high-entropy" if alnum_mix(core) and entropy(core) >= HEX_LIMIT else None
    elif sum(map(str.isdigit, core)) < 2 and "+" not in core:
        # a name (`FlowVerifyAuthMethodRegistrationParamsV2`): random base64 of 20 characters
        # or more holds 2 digits or more (or a `+`) but about 1 time in 100
        kind = None
    else:
        bits = entropy(core)
        if (  # an AWS secret access key: 40 characters of base64, in a variable of any name
            len(core) == 40
            and set(core) <= _BASE64_STD
            and mixed_case(core)
            and bits >= AWS_SECRET_LIMIT
        ):
            kind = "aws-secret"
        else:
            kind = "high-entropy" if bits >= BASE64_LIMIT else None
    if kind is not None and len(core) <= 128 and _sequential(core):
        return None  # an alphabet (95 characters at most)
    return kind


# -- the masker ----------------------------------------------------------------------------------


class _Spans:
    """The secrets found so far: non-overlapping, the first found wins."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.covered = bytearray(len(text))
        self.taken: list[tuple[int, int, str]] = []

    def take(self, start: int, end: int, kind: str) -> bool:
        if end <= start or self.covered.find(1, start, end) != -1:
            return False
        self.covered[start:end] = b"\x01" * (end - start)
        self.taken.append((start, end, kind))
        return True

    def ends_token(self, end: int) -> bool:
        """Whether a match ending at `end` is a whole token, not the start of a longer word."""
        return end >= len(self.text) or not _word_char(self.text[end])

    def starts_token(self, start: int) -> bool:
        return start <= 0 or not _word_char(self.text[start - 1])


def _word_char(c: str) -> bool:
    return c.isalnum() or c == "_"


def _tokens(spans: _Spans) -> None:
    text = spans.text
    for rule in RULES:
        if not any(k in text for k in rule.keywords):
            continue
        for m in rule.pattern.finditer(text):
            start, end = m.start("s") - rule.back, m.end("s")
            while end > start and text[end - 1] == ".":
                end -= 1  # a sentence's full stop
            if rule.back and not spans.starts_token(start):
                continue
            if spans.ends_token(end) and rule.accepts(text[start:end]):
                spans.take(start, end, rule.kind)


def _headers_and_urls(spans: _Spans) -> None:
    text = spans.text
    if "://" in text:
        for m in _URL_PASSWORD.finditer(text):
            if _url_password(m.group("s")):
                spans.take(*m.span("s"), "url-password")
    for pattern, keywords, accepts, kind in (
        (_BEARER, ("earer", "EARER"), _bearer, "bearer-token"),
        (_BASIC, ("asic", "ASIC"), _basic, "basic-auth"),
    ):
        if not any(k in text for k in keywords):
            continue
        for m in pattern.finditer(text):
            end = m.end("s")
            while end > m.start("s") and text[end - 1] == ".":
                end -= 1
            if spans.ends_token(end) and accepts(text[m.start("s") : end]):
                spans.take(m.start("s"), end, kind)


def _assignments(spans: _Spans) -> None:
    text = spans.text
    values: set[int] = set()  # where the value of a secret-named key starts
    for name_end in _secret_names(text, _lowered(text)):
        op = _ASSIGN_OP.match(text, name_end)
        if op is None:
            continue
        pos = op.end()
        values.add(pos)
        quoted = _QUOTED.match(text, pos)
        if quoted is not None:
            if _quoted_value(quoted.group("s"), _MIN_VALUE):
                spans.take(*quoted.span("s"), "secret")
            continue
        unquoted = _UNQUOTED.match(text, pos)
        if unquoted is not None and _unquoted_value(unquoted.group("s")):
            spans.take(*unquoted.span("s"), "secret")
    if "(" in text:
        for m in _ENV_DEFAULT.finditer(text):
            call = m.start() - 3 if text.startswith("os.", m.start() - 3) else m.start()
            named = call in values or _secret_name(m.group("name"))
            if named and _quoted_value(m.group("s"), _MIN_ENV_DEFAULT):
                spans.take(*m.span("s"), "secret")


def _high_entropy(spans: _Spans) -> None:
    for m in _RUN.finditer(spans.text):
        kind = _entropy_kind(spans.text, m.start(), m.end())
        if kind is not None:
            spans.take(m.start(), m.end(), kind)


def mask(text: str) -> Masked:
    """`text` with every secret-shaped substring replaced by a same-length placeholder."""
    spans = _Spans(text)
    if "PRIVATE KEY" in text or "Private-Lines" in text:
        for start, end in _pem_spans(text):
            if _BASE64_CORE.search(text, start, end):  # not `BEGIN … END` in a sentence
                spans.take(start, end, "private-key")
    _tokens(spans)
    _headers_and_urls(spans)
    _assignments(spans)
    _high_entropy(spans)
    if not spans.taken:
        return Masked(text, ())
    out: list[str] = []
    found: list[Finding] = []
    pos = line = 0
    for start, end, kind in sorted(spans.taken):
        line += text.count("\n", pos, start)
        out.append(text[pos:start])
        found.append(Finding(kind, line))
        if kind == "private-key":
            # every base64 run of the block, line by line: quotes, escapes, breaks stay
            body = text[start:end]
            out.append(_BASE64.sub(lambda r: MASK * len(r.group()), body))
            line += body.count("\n")
        else:
            out.append(placeholder(kind, end - start))
        pos = end
    out.append(text[pos:])
    return Masked("".join(out), tuple(found))
