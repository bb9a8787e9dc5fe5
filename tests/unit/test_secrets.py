"""Secret masking: each secret shape is masked in place (same lines, same columns), and code that
only looks a little like a secret is left alone. Long fake keys are built at run time, so that no
file of the repository holds a real-looking key."""

from __future__ import annotations

import pytest

from ace_lsp.orchestrator.code import prompts
from ace_lsp.orchestrator.code.secrets import MASK, Finding, mask, placeholder
from ace_lsp.orchestrator.code.source import Source
from ace_lsp.orchestrator.types import CodeIssue, LineRange, Position, TextRange

ALNUM = "A1b2C3d4E5f6G7h8I9j0"  # 20 mixed characters, repeated to reach a vendor's key length
UPPER = "ABCDEFGHIJKLMNOP" * 2


def body(n: int, alphabet: str = ALNUM) -> str:
    return (alphabet * (n // len(alphabet) + 1))[:n]


PEM_BODY = [body(64, "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC"), body(40, "bWFza2VkLWtleS1ib2R5")]
PEM = (
    "KEY = '''-----BEGIN RSA PRIVATE KEY-----\n"
    + "\n".join(PEM_BODY)
    + "\n-----END RSA PRIVATE KEY-----'''\n"
)

SECRETS = [
    pytest.param(f'key = "AKIA{body(16, UPPER)}"\n', "aws-key", "AKIA", id="aws-akia"),
    pytest.param(f"id: ASIA{body(16, UPPER)}\n", "aws-key", "ASIA", id="aws-asia"),
    pytest.param(f'client = OpenAI(api_key="sk-{body(48)}")\n', "openai-key", "sk-", id="openai"),
    pytest.param(f"k = 'sk-proj-{body(60)}'\n", "openai-key", "sk-proj-", id="openai-proj"),
    pytest.param(f"K = 'sk-TESTKEY-ace-{'0' * 16}'\n", "openai-key", "sk-", id="openai-test"),
    pytest.param(f'k = "sk-ant-api03-{body(80)}"\n', "anthropic-key", "sk-ant-", id="anthropic"),
    pytest.param(f'G = "AIza{body(35)}"\n', "google-key", "AIza", id="google"),
    pytest.param(f"token = ghp_{body(36)}\n", "github-token", "ghp_", id="github-classic"),
    pytest.param(f'T = "github_pat_{body(82)}"\n', "github-token", "github_pat_", id="github-pat"),
    pytest.param(f"SLACK = 'xoxb-{'1234567890'}-{body(24)}'\n", "slack-token", "xoxb-", id="slack"),
    pytest.param('password = "hunter2hunter2"\n', "secret", '"', id="password"),
    pytest.param("db_secret = 'correct-horse-battery'\n", "secret", "'", id="secret-suffix"),
    pytest.param('config = {"api_key": "abcdefgh12345678"}\n', "secret", '"', id="dict-key"),
    pytest.param('    token: str = "tok_1234567890abcdef"\n', "secret", '"', id="annotated"),
    pytest.param("token: abc123def456ghi789\n", "secret", " ", id="yaml"),
    pytest.param("DB_PASSWORD=s3cr3tpassw0rd  # prod\n", "secret", "=", id="dotenv"),
    pytest.param('connect(host, password="pa55word!")\n', "secret", '"', id="kwarg"),
]


@pytest.mark.parametrize(("line", "kind", "kept"), SECRETS)
def test_a_secret_is_masked_in_place(line: str, kind: str, kept: str) -> None:
    masked = mask(line)
    assert masked.found == (Finding(kind, 0),)
    assert masked.text != line
    assert len(masked.text) == len(line)
    assert masked.text.count("\n") == line.count("\n")
    # only the secret changed: its prefix (`sk-`, `AKIA`, an opening quote) and the rest stay
    start = next(i for i, (a, b) in enumerate(zip(line, masked.text, strict=True)) if a != b)
    end = len(line) - next(
        i for i, (a, b) in enumerate(zip(line[::-1], masked.text[::-1], strict=True)) if a != b
    )
    assert line[start - len(kept) : start] == kept
    assert masked.text[start:end] == placeholder(kind, end - start)
    assert masked.text[:start] == line[:start] and masked.text[end:] == line[end:]
    # what it replaced leaves no 8-character trace
    secret = line[start:end]
    assert all(secret[i : i + 8] not in masked.text for i in range(len(secret) - 7))


def test_a_private_key_block_keeps_its_lines_and_markers() -> None:
    masked = mask("import os\n" + PEM + "x = 1\n")
    assert masked.found == (Finding("private-key", 1),)
    original = ("import os\n" + PEM + "x = 1\n").splitlines()
    lines = masked.text.splitlines()
    assert [len(x) for x in lines] == [len(x) for x in original]
    assert lines[1] == "KEY = '''-----BEGIN RSA PRIVATE KEY-----"
    assert lines[2] == MASK * 64 and lines[3] == MASK * 40
    assert lines[4] == "-----END RSA PRIVATE KEY-----'''"
    assert lines[5] == "x = 1"


def test_an_inline_key_block_keeps_its_escapes_and_quotes() -> None:
    line = f'K = "-----BEGIN PRIVATE KEY-----\\n{PEM_BODY[0]}\\n-----END PRIVATE KEY-----\\n"\n'
    masked = mask(line)
    assert masked.found == (Finding("private-key", 0),)
    assert masked.text == line.replace(PEM_BODY[0], MASK * 64)


def test_a_key_block_without_its_end_masks_the_base64_lines_that_follow() -> None:
    text = "-----BEGIN OPENSSH PRIVATE KEY-----\n" + "\n".join(PEM_BODY) + "\ndef f():\n"
    masked = mask(text)
    assert masked.text.splitlines()[1:] == [MASK * 64, MASK * 40, "def f():"]


def test_several_secrets_are_each_reported_with_their_line() -> None:
    text = f"a = 1\nb = 'AKIA{body(16, UPPER)}'\n\nc = 'sk-{body(40)}'  # and AIza{body(35)}\n"
    masked = mask(text)
    assert masked.found == (
        Finding("aws-key", 1),
        Finding("openai-key", 3),
        Finding("google-key", 3),
    )
    assert [len(x) for x in masked.text.splitlines()] == [len(x) for x in text.splitlines()]


NOT_SECRETS = [
    pytest.param('password = ""\n', id="empty-password"),
    pytest.param("password = 'abc'\n", id="short-password"),
    pytest.param('password = "Enter your password"\n', id="prose-value"),
    pytest.param("password = get_password()\n", id="call"),
    pytest.param("token = self.settings.token\n", id="attribute"),
    pytest.param("api_key = os.environ['OPENAI_API_KEY']\n", id="environ"),
    pytest.param('secret = "${SECRET_FROM_ENV}"\n', id="template"),
    pytest.param('password = "********"\n', id="stars"),
    pytest.param("max_tokens = 1000000000\n", id="max-tokens"),
    pytest.param('token_type = "bearer_token"\n', id="not-a-secret-name"),
    pytest.param("# Set your password to something long and keep it secret.\n", id="prose"),
    pytest.param("The token: is what you pass to the server.\n", id="prose-colon"),
    pytest.param("from sklearn import svm  # sk-learn\n", id="sk-learn"),
    pytest.param("task-runner-for-deployments-and-more = 1\n", id="task-dash"),
    pytest.param("x = 'sk-this-is-a-long-css-class-name'\n", id="sk-without-digits"),
    pytest.param("AKIA = 'AKIA12'\n", id="short-akia"),
    pytest.param("-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8A\n", id="public-key"),
    pytest.param("def f(x):\n    return x + 1\n", id="code"),
    pytest.param("", id="empty"),
]


@pytest.mark.parametrize("text", NOT_SECRETS)
def test_text_that_is_not_a_secret_is_left_alone(text: str) -> None:
    masked = mask(text)
    assert masked.found == ()
    assert masked.text == text


def test_placeholder_has_the_exact_length() -> None:
    assert placeholder("aws-key", 16) == "«masked:aws-key»"
    assert placeholder("aws-key", 20) == "«masked:aws-key»" + MASK * 4
    assert placeholder("openai-key", 5) == MASK * 5


SOURCE = f"import os\n\nKEY = 'AKIA{body(16, UPPER)}'\nOPENAI = 'sk-{body(40)}'\n\n\ndef f(x):\n    if x == None:\n        return KEY\n    return x\n"
ISSUE = CodeIssue(
    range=TextRange(Position(7, 9), Position(7, 16)),
    message="Comparison to `None` should be `cond is None`",
    code="E711",
    source="Ruff",
)


def _user(messages: tuple[object, ...]) -> str:
    return str(messages[1].content)  # type: ignore[attr-defined]


def test_prompts_mask_the_code_they_show_unless_told_not_to() -> None:
    source = Source(SOURCE)
    allowed = (LineRange(5, 9),)
    aws, openai = f"AKIA{body(16, UPPER)}", f"sk-{body(40)}"
    for masked in (
        prompts.fix_messages("m.py", "python", source, [ISSUE], allowed),
        prompts.review_messages("m.py", "python", source, LineRange(0, 9)),
        prompts.improve_messages("m.py", "python", source, allowed),
    ):
        user = _user(masked)
        assert aws not in user and openai not in user
        assert "«masked:aws-key»" in user and "«masked:openai-key»" in user
    for plain in (
        prompts.fix_messages("m.py", "python", source, [ISSUE], allowed, mask_secrets=False),
        prompts.review_messages("m.py", "python", source, LineRange(0, 9), mask_secrets=False),
        prompts.improve_messages("m.py", "python", source, allowed, mask_secrets=False),
    ):
        user = _user(plain)
        assert aws in user and openai in user


def test_a_secret_quoted_in_a_diagnostic_message_is_masked_too() -> None:
    issue = CodeIssue(
        range=TextRange(Position(2, 0), Position(2, 4)),
        message=f"Hard-coded key 'sk-{body(40)}'",
    )
    user = _user(prompts.fix_messages("m.py", None, Source(SOURCE), [issue], (LineRange(2, 2),)))
    assert f"sk-{body(40)}" not in user
