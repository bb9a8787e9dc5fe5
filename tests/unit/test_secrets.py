"""Secret masking: each secret shape is masked in place (same lines, same columns), and code that
only looks a little like a secret is left alone; every pattern takes linear time on hostile input.
Long fake keys are built at run time, so that no file of the repository holds a real-looking
key."""

from __future__ import annotations

import base64
import re
import time

import pytest

from ace_lsp.orchestrator.code import prompts, secrets
from ace_lsp.orchestrator.code.secret_rules import RULES
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

HEX = "0123456789abcdef"
SHA = "3a7bd3e2360a3d29eea436fcfb7e44c7"  # hex digits in no order: a hash, as lockfiles hold
LETTERS = "AbCdEfGhIjKlMnOpQrStUvWxYz"
# base64url of {"alg":"HS256","typ":"JWT"} and of {"sub":"ace-test"}, then a made-up signature
JWT = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9" + ".eyJzdWIiOiJhY2UtdGVzdCJ9." + body(43)
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCY" + "fake" + "0KEY9Z"  # 40 characters of base64
BASIC = base64.b64encode(b"ace-user:not-a-real-pass").decode()

# issue 12 §4: what real repositories hold, one line per kind (and one per rule of secret_rules)
MORE_SECRETS = [
    pytest.param(
        f'stripe.api_key = "sk_live_{body(24)}"\n', "stripe-key", "sk_live_", id="stripe-live"
    ),
    pytest.param(
        f"STRIPE_RESTRICTED = 'rk_live_{body(24)}'\n",
        "stripe-key",
        "rk_live_",
        id="stripe-restricted",
    ),
    pytest.param(f'session = "{JWT}"\n', "jwt", "eyJ", id="jwt"),
    pytest.param(
        f'DATABASE_URL = "postgres://app:{body(16)}@db.internal:5432/app"\n',
        "url-password",
        ":",
        id="postgres-url",
    ),
    pytest.param(
        f"REDIS_URL=redis://:{body(12)}@cache:6379/0\n", "url-password", ":", id="redis-url"
    ),
    pytest.param(
        f'CONN = "DefaultEndpointsProtocol=https;AccountName=acme;AccountKey={body(86)}==;EndpointSuffix=core.windows.net"\n',
        "azure-key",
        "AccountKey=",
        id="azure-account-key",
    ),
    pytest.param(f'AZURE_CLIENT = "abc1Q~{body(34)}"\n', "azure-key", '"', id="azure-ad-secret"),
    pytest.param(
        f'HOOK = "https://hooks.slack.com/services/T00000000/B00000000/{body(24)}"\n',
        "slack-webhook",
        "services/",
        id="slack-webhook",
    ),
    pytest.param(
        f"SLACK_APP = 'xapp-1-A0123456789-1234567890123-{body(64, HEX)}'\n",
        "slack-token",
        "xapp-",
        id="slack-app",
    ),
    pytest.param(
        f"//registry.npmjs.org/:_authToken=npm_{body(36)}\n", "npm-token", "npm_", id="npm"
    ),
    pytest.param(f'HF = "hf_{body(34, LETTERS)}"\n', "huggingface-token", "hf_", id="huggingface"),
    pytest.param(
        f'HF_ORG = "api_org_{body(34, LETTERS)}"\n',
        "huggingface-token",
        "api_org_",
        id="huggingface-org",
    ),
    pytest.param(f'SENDGRID = "SG.{body(22)}.{body(43)}"\n', "sendgrid-key", "SG.", id="sendgrid"),
    pytest.param(f'TWILIO = "SK{body(32, HEX)}"\n', "twilio-key", "SK", id="twilio"),
    pytest.param(f'GITLAB = "glpat-{body(20)}"\n', "gitlab-token", "glpat-", id="gitlab-pat"),
    pytest.param(f'DEPLOY = "gldt-{body(20)}"\n', "gitlab-token", "gldt-", id="gitlab-deploy"),
    pytest.param(
        f"RUNNER = 'GR1348941{body(20)}'\n", "gitlab-token", "GR1348941", id="gitlab-runner"
    ),
    pytest.param(
        f'headers = {{"Authorization": "Bearer {body(40)}"}}\n',
        "bearer-token",
        "Bearer ",
        id="bearer-header",
    ),
    pytest.param(
        f'headers = {{"Authorization": "Basic {BASIC}"}}\n',
        "basic-auth",
        "Basic ",
        id="basic-header",
    ),
    pytest.param(f'aws_key = "{AWS_SECRET}"\n', "aws-secret", '"', id="aws-secret-any-name"),
    pytest.param('DB_PASS = "correct-horse-battery"\n', "secret", '"', id="db-pass"),
    pytest.param('dbPass = "correct-horse-battery"\n', "secret", '"', id="camel-pass"),
    pytest.param("PGPASSWORD=s3cr3tpassw0rd\n", "secret", "=", id="pgpassword"),
    pytest.param(
        'password=os.environ.get("DB_PASSWORD", "dev-pa55word")\n',
        "secret",
        '"',
        id="environ-default",
    ),
    pytest.param(
        "PASSWORD = os.getenv('PGPASS', 'dev-pa55word')\n",
        "secret",
        "'",
        id="getenv-default-assigned",
    ),
    pytest.param(
        'host = os.environ.get("API_TOKEN", "tok-2468")\n',
        "secret",
        '"',
        id="environ-default-named",
    ),
    pytest.param('"client_secret": "abcdefgh12345678",\n', "secret", '"', id="json-key"),
    pytest.param(":password => 'hunter2hunter2'\n", "secret", "'", id="ruby-hash"),
    pytest.param(f'sha = "{body(64, SHA)}"\n', "high-entropy", '"', id="hex-entropy"),
    pytest.param(
        f"blob: {base64.b64encode(bytes(range(48))).decode()}\n",
        "high-entropy",
        " ",
        id="base64-entropy",
    ),
    pytest.param(
        f'DISCORD_TOKEN = "N{body(23, LETTERS)}.{body(6)}.{body(27)}"\n',
        "discord-token",
        ".",
        id="discord",
    ),
    pytest.param(f'MAILCHIMP = "{body(32, HEX)}-us6"\n', "mailchimp-key", '"', id="mailchimp"),
    pytest.param(f'BOT = "123456789:AA{body(33)}"\n', "telegram-token", ":", id="telegram"),
    pytest.param(f'PYPI = "pypi-AgEIcHlwaS5vcmc{body(60)}"\n', "pypi-token", "pypi-", id="pypi"),
    pytest.param(f'SHOPIFY = "shpat_{body(32, HEX)}"\n', "shopify-token", "shpat_", id="shopify"),
    pytest.param(
        f'DO = "dop_v1_{body(64, HEX)}"\n', "digitalocean-token", "dop_v1_", id="digitalocean"
    ),
    pytest.param(
        f'DATABRICKS = "dapi{body(32, HEX)}"\n', "databricks-token", "dapi", id="databricks"
    ),
    pytest.param(
        f'POSTMAN = "PMAK-{body(24, HEX)}-{body(34, HEX)}"\n', "postman-key", "PMAK-", id="postman"
    ),
    pytest.param(f'LINEAR = "lin_api_{body(40)}"\n', "linear-key", "lin_api_", id="linear"),
    pytest.param(f'DOPPLER = "dp.pt.{body(43)}"\n', "doppler-token", "dp.pt.", id="doppler"),
    pytest.param(f'SENTRY = "sntryu_{body(64, HEX)}"\n', "sentry-token", "sntryu_", id="sentry"),
    pytest.param(f'GRAFANA = "glc_{body(40)}"\n', "grafana-token", "glc_", id="grafana"),
    pytest.param(
        f"AGE = 'AGE-SECRET-KEY-1{body(58, UPPER)}'\n", "age-key", "AGE-SECRET-KEY-1", id="age"
    ),
    pytest.param(f'SQUARE = "sq0atp-{body(22)}"\n', "square-token", "sq0atp-", id="square"),
    pytest.param(f'ARTIFACTORY = "AKCp{body(69)}"\n', "artifactory-key", "AKCp", id="artifactory"),
    pytest.param(f'VAULT = "hvs.{body(95)}"\n', "vault-token", "hvs.", id="vault"),
    pytest.param(f'NEWRELIC = "NRAK-{body(27, UPPER)}"\n', "newrelic-key", "NRAK-", id="newrelic"),
    pytest.param(f'PULUMI = "pul-{body(40, HEX)}"\n', "pulumi-token", "pul-", id="pulumi"),
    pytest.param(
        f'PSCALE = "pscale_tkn_{body(40)}"\n', "planetscale-token", "pscale_tkn_", id="planetscale"
    ),
]
SECRETS += MORE_SECRETS


def test_every_rule_has_a_fixture_line() -> None:
    kinds = {p.values[1] for p in SECRETS}
    assert {rule.kind for rule in RULES} <= kinds


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


def test_a_putty_key_masks_its_private_lines_only() -> None:
    public, private = body(28, "AAAAB3NzaC1yc2EAAAABJQ"), PEM_BODY[1][:28]
    text = (
        "PuTTY-User-Key-File-2: ssh-rsa\nPublic-Lines: 1\n"
        f"{public}\nPrivate-Lines: 2\n{private}\n{private}\nPrivate-MAC: 0a1b2c\n"
    )
    masked = mask(text)
    assert masked.found == (Finding("private-key", 3),)
    assert masked.text == text.replace(private, MASK * 28)


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
    # what ordinary code holds: identifiers, URLs without a password, UUIDs, templates
    pytest.param('uuid = "123e4567-e89b-12d3-a456-426614174000"\n', id="uuid"),
    pytest.param('URL = "https://github.com/Org123/Repo-Name/blob/Main/README.md"\n', id="url"),
    pytest.param('DB = "postgres://localhost:5432/app"\n', id="url-with-port"),
    pytest.param('GIT = "ssh://git@github.com:22/org/repo.git"\n', id="url-with-user-only"),
    pytest.param('DB = "postgres://app:${DB_PASSWORD}@db:5432/app"\n', id="url-template"),
    pytest.param('DB = "redis://:abc@cache:6379"\n', id="url-password-too-short-to-mark"),
    pytest.param('name = "ThisIsAVeryLongCamelCaseIdentifierName"\n', id="camel-identifier"),
    pytest.param("def test_a_private_key_block_keeps_its_lines_and_markers():\n", id="long-name"),
    pytest.param('password_hint = "Enter your password123"\n', id="password-hint"),
    pytest.param('bypass = "abcdefgh12345"\n', id="bypass"),
    pytest.param("sorted(items, key=lambda item: item.name)\n", id="key-kwarg"),
    pytest.param('cache_key = "user:1234:profile"\n', id="cache-key"),
    pytest.param('TOKEN_URL = "https://oauth2.example.com/token"\n', id="token-url"),
    pytest.param('headers = {"Authorization": f"Bearer {token}"}\n', id="bearer-template"),
    pytest.param('"Bearer tokens are sent in the Authorization header"\n', id="bearer-prose"),
    pytest.param("# Basic authentication is not supported\n", id="basic-prose"),
    pytest.param('password = os.environ["DB_PASSWORD"]\n', id="environ-no-default"),
    pytest.param('timeout = os.environ.get("TIMEOUT", "30")\n', id="environ-not-secret"),
    pytest.param("if password == 'hunter2hunter2':\n", id="comparison"),
    pytest.param('path = "src/ace_lsp/orchestrator/code/Secrets2"\n', id="path"),
    pytest.param(
        "import hf_transfer; hf_hub_download_with_retries_for_the_tests()\n", id="hf-name"
    ),
    pytest.param('SK = "SKIP_THIS_TEST_WHEN_OFFLINE"\n', id="sk-word"),
    pytest.param('key = "A1b2C3d4E5f6G7h8I9j0"\n', id="short-mixed"),
    pytest.param(
        'LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"\n', id="alphabet"
    ),
    pytest.param(
        'B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"\n',
        id="b64-alphabet",
    ),
    pytest.param(
        "# connect with postgres://user:password@localhost/db\n", id="url-password-example"
    ),
    pytest.param(
        "# a string with -----BEGIN PRIVATE KEY----- … -----END PRIVATE KEY-----\n", id="pem-prose"
    ),
    pytest.param('ACCESS_TOKEN = "access_token"\n', id="constant-named-token"),
    pytest.param(
        'INVALID = {"password": "invalidUserNameOrPassword"}\n', id="constant-named-password"
    ),
    pytest.param("PWD: '/Users/ann/project'\n", id="pwd-path"),
    pytest.param(
        "import { FlowVerifyAuthMethodRegistrationParamsV2 } from './p'\n", id="long-name-v2"
    ),
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


# -- linear time -----------------------------------------------------------------------------------

N = 100_000  # characters of each hostile input: a quadratic pattern takes minutes on it


def _repeat(unit: str, n: int = N) -> str:
    return (unit * (n // len(unit) + 1))[:n]


def _hostile_for(keywords: tuple[str, ...], n: int = N) -> list[str]:
    """Each keyword of a rule repeated bare, and with what its pattern reads after it."""
    units = ("", "a", "a-", "0.", " ", "=", '="', ":")
    return [_repeat(k + unit, n) for k in keywords for unit in units] + [
        _repeat("x" + k, n) for k in keywords
    ]


HOSTILE = {
    "base64 run": base64.b64encode(bytes(range(256)) * 300).decode()[:200_000],
    "urlsafe base64 run": base64.urlsafe_b64encode(bytes(range(256)) * 300).decode()[:200_000],
    "pwd_ x16k": "pwd_" * 16_000,
    "password repeated": "password" * 12_500,
    "pem BEGIN without END": "-----BEGIN RSA PRIVATE KEY-----\n" + "n" * N + "!\n",
    "pem BEGIN lines": "-----BEGIN PRIVATE KEY-----\n" * 4_000,
    "pem base64 lines without END": "-----BEGIN PRIVATE KEY-----\n" + "QUJD+/==\n" * 12_000,
    "spaces": "password" + " " * N + "\n",
    "equals": "token" + "=" * N,
    "quotes": 'password = "' + '"' * N,
    "mixed quotes": _repeat("token='\"`"),
    "token colon": "token: " + "a" * N,
    "eyJ": _repeat("eyJ"),
    "eyJ dashes": _repeat("eyJa-"),
    "scheme": "://" + _repeat("a:"),
    "schemes": _repeat("://a:b"),
    "bearer": _repeat("Bearer "),
    "bearer spaces": "Bearer" + " " * N + "{",
    "assignments": _repeat("token="),
    "annotations": "token: " + _repeat("int, "),
    "env calls": _repeat('os.environ.get("'),
    "env defaults": _repeat('getenv("A", "'),
    "digits colon": _repeat("12345678:AA"),
    "hex": _repeat("0123456789abcdef"),
    "Q~": _repeat("abc1Q~"),
    "-us": _repeat("a" * 32 + "-us1"),
    "long line of =": "x = " + "=" * N,
    "backslashes": _repeat("\\n"),
    "keys": _repeat("key "),
    "api keys": _repeat("api_key="),
    "passes": _repeat("pass "),
}
# applied only at one position (`match`, `fullmatch`), never searched: timed through mask()
ANCHORED = {"_ASSIGN_OP", "_QUOTED", "_UNQUOTED", "_DOTTED", "_VARIABLE"}


def _searched() -> list[re.Pattern[str]]:
    module = [
        v for k, v in vars(secrets).items() if isinstance(v, re.Pattern) and k not in ANCHORED
    ]
    return module + [rule.pattern for rule in RULES]


def _took(pattern: re.Pattern[str], text: str) -> float:
    start = time.perf_counter()
    for _ in pattern.finditer(text):
        pass
    return time.perf_counter() - start


def test_every_pattern_is_linear_on_hostile_input() -> None:
    """Generous bounds: they catch quadratic behaviour (minutes here), not a slow machine."""
    slow = [
        (p.pattern[:40], name, round(t, 2))
        for p in _searched()
        for name, text in HOSTILE.items()
        if (t := _took(p, text)) > 0.5
    ]
    slow += [
        (rule.pattern.pattern[:40], text[:20], round(t, 2))
        for rule in RULES
        for text in _hostile_for(rule.keywords)
        if (t := _took(rule.pattern, text)) > 0.5
    ]
    anchored = [v for k, v in vars(secrets).items() if k in ANCHORED]
    slow += [
        (p.pattern[:40], name, round(t, 2))
        for p in anchored
        for name, text in HOSTILE.items()
        if (t := _took_anchored(p, text)) > 0.5
    ]
    assert slow == []


def _took_anchored(pattern: re.Pattern[str], text: str) -> float:
    start = time.perf_counter()
    pattern.match(text)
    pattern.fullmatch(text)
    return time.perf_counter() - start


@pytest.mark.parametrize("name", list(HOSTILE))
def test_mask_is_fast_on_hostile_input(name: str) -> None:
    text = HOSTILE[name]
    start = time.perf_counter()
    masked = mask(text)
    assert time.perf_counter() - start < 1.0
    assert len(masked.text) == len(text)


def test_mask_is_fast_on_a_megabyte_of_every_rule() -> None:
    parts = [t for rule in RULES for t in _hostile_for(rule.keywords, 1_000)]
    text = "\n".join(parts + [t[:20_000] for t in HOSTILE.values()])
    start = time.perf_counter()
    masked = mask(text)
    assert time.perf_counter() - start < 2.0, len(text)
    assert [len(x) for x in masked.text.split("\n")] == [len(x) for x in text.split("\n")]
