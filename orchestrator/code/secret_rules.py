"""Vendor token shapes for `code.secrets`: one row per family, ported from maintained rule sets.

Sources, named on each row: gitleaks' default rules (`config/gitleaks.toml`, MIT License,
Copyright (c) 2019 Zachary Rice) and Yelp's detect-secrets plugins (`detect_secrets/plugins/`,
Apache License 2.0); "ACE" marks a shape ACE had before. The prefixes, alphabets and lengths are
theirs; the regexes are rewritten. gitleaks' patterns rely on Go's linear-time RE2 engine, and
several of detect-secrets' backtrack without bound in Python's `re` (its keyword patterns take
50 s on 16 KB of `password` repeated; its JWT pattern is quadratic on `eyJ` repeated). So each
row here is a literal prefix, then one greedy run of a single character class: a match never
fails after reading its run, so one rule reads no character twice. What RE2 checked with bounded
repeats (an exact length, mixed case, a second dot) is checked in plain code by `Rule.accepts`.

A row's word boundary is written after its literal (`_word`): a leading `\\b` or lookbehind would
make `re` try every position instead of jumping to the literal, 20 to 40 times slower.
`keywords` are literals of which one must be in the text for the rule to run, as in gitleaks: a
cheap filter (`str.__contains__`), and the seeds of the adversarial inputs the tests time.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property


def has_digit(s: str) -> bool:
    """Whether `s` holds a digit."""
    return any(c.isdigit() for c in s)


def mixed_case(s: str) -> bool:
    """Whether `s` holds both upper- and lower-case letters."""
    return any(c.isupper() for c in s) and any(c.islower() for c in s)


def alnum_mix(s: str) -> bool:
    """Letters and digits both: a token, not a word or a number."""
    return has_digit(s) and any(c.isalpha() for c in s)


@dataclass(frozen=True)
class Rule:
    """One token family: its regex, the keywords it needs in the text, and the checks on a match."""

    kind: str
    # group "s" is masked, with the `back` characters before it (checked by a lookbehind); what
    # the match holds before it (a vendor's prefix such as `sk-` or `AKIA`) is kept
    source: str
    keywords: tuple[str, ...]
    min_len: int = 1
    max_len: int = 1 << 20
    check: Callable[[str], bool] | None = None
    back: int = 0

    @cached_property
    def pattern(self) -> re.Pattern[str]:
        """Compiled on first use: the table costs nothing at server start."""
        return re.compile(self.source)

    def accepts(self, secret: str) -> bool:
        """Whether a matched secret has the rule's length and passes its `check`."""
        if not self.min_len <= len(secret) <= self.max_len:
            return False
        return self.check is None or self.check(secret)


def _word(prefix: str, width: int) -> str:
    """`prefix` (a regex matching `width` characters) where a word starts, like `\\bprefix`."""
    return f"{prefix}(?<=\\b.{{{width}}})"


def _rule(
    kind: str,
    pattern: str,
    keywords: tuple[str, ...],
    min_len: int = 1,
    max_len: int = 1 << 20,
    check: Callable[[str], bool] | None = None,
    back: int = 0,
) -> Rule:
    return Rule(kind, pattern, keywords, min_len, max_len, check, back)


def _sendgrid(s: str) -> bool:
    parts = s.split(".")
    return len(parts) == 2 and len(parts[0]) >= 16 and len(parts[1]) >= 30


def _jwt(s: str) -> bool:
    """`s` follows `eyJ`: the header's rest, a payload that is JSON too, and a signature part."""
    parts = s.split(".")
    return len(parts) >= 3 and len(parts[0]) >= 8 and parts[1][:2] == "ey" and len(parts[1]) >= 10


_ALNUM = "[A-Za-z0-9]+"
_TOKEN = "[A-Za-z0-9_-]+"
_HEX = "[0-9a-fA-F]+"

# `code.secrets` also refuses a match followed by a letter, digit or `_` (a piece of a longer
# word), as a trailing `\b` would, and drops a trailing full stop.
RULES: tuple[Rule, ...] = (
    # ACE; gitleaks anthropic-api-key, anthropic-admin-api-key
    _rule("anthropic-key", _word("sk-ant-", 7) + f"(?P<s>{_TOKEN})", ("sk-ant-",), 20),
    # ACE; gitleaks openai-api-key (its `T3BlbkFJ` marker is not required: project keys lack it)
    _rule(
        "openai-key",
        _word("sk-", 3) + f"(?:proj-|svcacct-|admin-)?(?P<s>{_TOKEN})",
        ("sk-",),
        20,
        check=has_digit,
    ),
    # gitleaks stripe-access-token; detect-secrets StripeDetector (`pk_` keys are public)
    _rule(
        "stripe-key",
        _word("[rs]k_", 3) + f"(?:live|test|prod)_(?P<s>{_ALNUM})",
        ("k_live_", "k_test_", "k_prod_"),
        10,
        255,
    ),
    # ACE; gitleaks aws-access-token; detect-secrets AWSKeyDetector
    _rule(
        "aws-key",
        _word("A", 1) + "(?:KIA|SIA|BIA|CCA|3T[A-Z0-9])(?P<s>[A-Z0-9]+)",
        ("AKIA", "ASIA", "ABIA", "ACCA", "A3T"),
        16,
        16,
    ),
    # ACE; gitleaks gcp-api-key
    _rule("google-key", _word("AIza", 4) + f"(?P<s>{_TOKEN})", ("AIza",), 35, 35),
    # ACE; gitleaks github-pat, github-oauth, github-app-token, github-refresh-token
    _rule("github-token", _word("gh[pousr]_", 4) + f"(?P<s>{_ALNUM})", ("gh",), 30, 255),
    # ACE; gitleaks github-fine-grained-pat
    _rule("github-token", _word("github_pat_", 11) + "(?P<s>[A-Za-z0-9_]+)", ("github_pat_",), 22),
    # gitleaks gitlab-pat, -pat-routable, -deploy-token, -feed-token, -runner-…, -scim-token,
    # -cicd-job-token, -incoming-mail-token, -ptt, -kubernetes-agent-token, -oauth-app-secret,
    # -feature-flag-client-token; detect-secrets GitLabTokenDetector
    _rule(
        "gitlab-token",
        _word("gl", 2) + "(?:pat|dt|ft|soat|rt|cbt|imt|ptt|agent|oas|ffct)-(?P<s>[A-Za-z0-9_.-]+)",
        ("gl",),
        20,
        1024,
    ),
    # gitleaks gitlab-rrt (runner registration token)
    _rule("gitlab-token", _word("GR1348941", 9) + f"(?P<s>{_TOKEN})", ("GR1348941",), 20),
    # ACE; gitleaks slack-bot-token, slack-user-token, …; detect-secrets SlackDetector
    _rule("slack-token", _word("xox[abeoprs]-", 5) + "(?P<s>[A-Za-z0-9-]+)", ("xox",), 10),
    # gitleaks slack-app-token
    _rule(
        "slack-token", _word("xapp-", 5) + "(?P<s>[A-Za-z0-9-]+)", ("xapp-",), 10, check=has_digit
    ),
    # gitleaks slack-webhook-url; detect-secrets SlackDetector
    _rule(
        "slack-webhook",
        r"hooks\.slack\.com/(?:services|workflows|triggers)/(?P<s>[A-Za-z0-9_/+]+)",
        ("hooks.slack.com/",),
        20,
    ),
    # gitleaks npm-access-token; detect-secrets NpmDetector
    _rule("npm-token", _word("npm_", 4) + f"(?P<s>{_ALNUM})", ("npm_",), 36, 36),
    # gitleaks huggingface-access-token
    _rule("huggingface-token", _word("hf_", 3) + f"(?P<s>{_ALNUM})", ("hf_",), 30, 40, mixed_case),
    # gitleaks huggingface-organization-api-token
    _rule(
        "huggingface-token",
        _word("api_org_", 8) + f"(?P<s>{_ALNUM})",
        ("api_org_",),
        30,
        40,
        mixed_case,
    ),
    # gitleaks sendgrid-api-token; detect-secrets SendGridDetector
    _rule(
        "sendgrid-key",
        _word(r"SG\.", 3) + rf"(?P<s>{_TOKEN}(?:\.{_TOKEN})?)",
        ("SG.",),
        48,
        check=_sendgrid,
    ),
    # gitleaks twilio-api-key; detect-secrets TwilioKeyDetector
    _rule("twilio-key", _word("SK", 2) + f"(?P<s>{_HEX})", ("SK",), 32, 32, alnum_mix),
    # gitleaks jwt; detect-secrets JwtTokenDetector
    _rule(
        "jwt",
        _word("eyJ", 3) + r"(?P<s>[A-Za-z0-9_=-]+(?:\.[A-Za-z0-9_=-]*)*)",
        ("eyJ",),
        24,
        check=_jwt,
    ),
    # gitleaks pypi-upload-token; detect-secrets PypiTokenDetector
    _rule("pypi-token", _word("pypi-", 5) + f"(?P<s>AgE{_TOKEN})", ("pypi-AgE",), 50),
    # detect-secrets AzureStorageKeyDetector (and Service Bus / Event Hubs connection strings)
    _rule(
        "azure-key",
        "(?:Account|SharedAccess)Key=(?P<s>[A-Za-z0-9+/=]+)",
        ("AccountKey=", "SharedAccessKey="),
        20,
    ),
    # gitleaks azure-ad-client-secret: 3 characters, a digit, `Q~`, 31 to 34 more
    _rule(
        "azure-key",
        r"(?P<s>Q~(?<=[A-Za-z0-9_~.]{3}[0-9]Q~)[A-Za-z0-9_~.-]{31,34})(?![A-Za-z0-9_~.-])",
        ("Q~",),
        back=4,
    ),
    # detect-secrets DiscordBotTokenDetector: id.timestamp.hmac (the id is kept); only where
    # Discord is named, as gitleaks' discord rules (the pattern has no literal to jump to)
    _rule(
        "discord-token",
        rf"(?<![A-Za-z0-9_-])[MNO][A-Za-z0-9_-]{{23,25}}\.(?P<s>[A-Za-z0-9_-]{{6}}\.{_TOKEN})",
        ("discord", "Discord", "DISCORD"),
        34,
        60,
    ),
    # gitleaks mailchimp-api-key; detect-secrets MailchimpDetector: 32 hex digits, `-us<n>`
    _rule(
        "mailchimp-key",
        r"(?P<s>)-us[0-9](?<=[0-9a-f]{32}-us[0-9])[0-9]?(?![A-Za-z0-9_])",
        ("-us",),
        back=32,
    ),
    # gitleaks telegram-bot-api-token: `<bot id>:AA…`
    _rule(
        "telegram-token",
        r":(?P<s>AA(?<=[0-9]{8}:AA)[A-Za-z0-9_-]{33})(?![A-Za-z0-9_-])",
        (":AA",),
    ),
    # gitleaks shopify-access-token, -custom-access-token, -private-app-access-token, -shared-secret
    _rule("shopify-token", _word("shp(?:at|ca|pa|ss)_", 6) + f"(?P<s>{_HEX})", ("shp",), 32, 32),
    # gitleaks digitalocean-pat, -access-token, -refresh-token
    _rule("digitalocean-token", _word("do[opr]_v1_", 7) + f"(?P<s>{_HEX})", ("_v1_",), 64, 64),
    # gitleaks databricks-api-token
    _rule("databricks-token", _word("dapi", 4) + f"(?P<s>{_HEX})", ("dapi",), 32, 32, alnum_mix),
    # gitleaks postman-api-token
    _rule("postman-key", _word("PMAK-", 5) + "(?P<s>[0-9a-fA-F-]+)", ("PMAK-",), 59, 59),
    # gitleaks linear-api-key
    _rule("linear-key", _word("lin_api_", 8) + f"(?P<s>{_ALNUM})", ("lin_api_",), 40, 40),
    # gitleaks doppler-api-token
    _rule(
        "doppler-token",
        _word(r"dp\.", 3) + rf"(?:pt|st|sa|ct|scim|audit)\.(?P<s>{_ALNUM})",
        ("dp.",),
        40,
    ),
    # gitleaks sentry-user-token, sentry-org-token
    _rule("sentry-token", _word("sntry[us]_", 7) + "(?P<s>[A-Za-z0-9+/=_]+)", ("sntry",), 40),
    # gitleaks grafana-cloud-api-token, grafana-service-account-token
    _rule(
        "grafana-token",
        _word("gl", 2) + "(?:c|sa)_(?P<s>[A-Za-z0-9+/=_]+)",
        ("glc_", "glsa_"),
        32,
    ),
    # gitleaks age-secret-key
    _rule(
        "age-key",
        _word("AGE-SECRET-KEY-1", 16) + "(?P<s>[A-Z0-9]+)",
        ("AGE-SECRET-KEY-1",),
        58,
        58,
    ),
    # gitleaks square-access-token; detect-secrets SquareOAuthDetector
    _rule("square-token", _word("sq0", 3) + f"(?:atp|csp)-(?P<s>{_TOKEN})", ("sq0",), 22),
    # gitleaks artifactory-api-key; detect-secrets ArtifactoryDetector
    _rule("artifactory-key", _word("AKCp", 4) + f"(?P<s>{_ALNUM})", ("AKCp",), 69),
    # gitleaks vault-service-token, vault-batch-token
    _rule("vault-token", _word(r"hv[sb]\.", 4) + f"(?P<s>{_TOKEN})", ("hvs.", "hvb."), 90),
    # gitleaks new-relic-user-api-key
    _rule("newrelic-key", _word("NRAK-", 5) + "(?P<s>[A-Z0-9]+)", ("NRAK-",), 27, 27),
    # gitleaks pulumi-api-token
    _rule("pulumi-token", _word("pul-", 4) + f"(?P<s>{_HEX})", ("pul-",), 40, 40),
    # gitleaks planetscale-api-token, -oauth-token, -password
    _rule(
        "planetscale-token",
        _word("pscale_", 7) + "(?:tkn|oauth|pw)_(?P<s>[A-Za-z0-9_=.-]+)",
        ("pscale_",),
        32,
        64,
    ),
)
