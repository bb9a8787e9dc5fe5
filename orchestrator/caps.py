"""Every size and time cap on hostile input, in one place: each value and why it is that value.

Model replies, diagnostics and LSP requests are hostile until checked (DESIGN.md). A cap turns an
input that would stall or bloat the server into one clear refusal (or, for diagnostics, a trimmed
request and one warning), long before it costs seconds or hundreds of megabytes.
"""

from __future__ import annotations

# -- model replies (providers/http.py) -------------------------------------------------------------

# A token is about 4 bytes of code or English; 8 per output token asked for leaves room for long
# tokens (indentation runs, rare words) before a reply counts as hostile rather than verbose.
REPLY_BYTES_PER_TOKEN = 8
# ...but never less than this, so a small `max_output_tokens` (a probe's 16) still reads a short
# reply whole; 64 KiB is a 2,000-line diff, and checking it takes milliseconds.
REPLY_BYTES_FLOOR = 64 * 1024
# On the wire a reply's text is bigger than itself: JSON escapes (`\n`, `\"`, `\uXXXX` for
# non-ASCII text, up to 3 times its UTF-8 size) and metadata. A JSON body, and one line of a
# stream, may be this many times the text cap.
BODY_PER_TEXT = 4
# In a stream every few characters come in an event of their own that repeats ids, model name and
# fingerprint (~250 bytes for one token): all of a stream's bytes may be this many times the text
# cap. Memory stays small (events are read one at a time); this bounds the time spent reading.
STREAM_PER_TEXT = 64
# An error body is only quoted (cut to 200 characters): more than this is not read.
ERROR_BODY_BYTES = 64 * 1024

# -- patches (code/diff_text.py) -------------------------------------------------------------------

# Lines one patch may add, counted while the reply is read (a hunk claiming more is refused from
# its header). A fix adds a handful and a rewrite of a large function a few hundred; the default
# reply cap carries about 2,000; 10,000 is far beyond any real fix and still checked in
# milliseconds, where a million lines took 11 s and 1.2 GB.
MAX_ADDED_LINES = 10_000
# Search/replace blocks read from one reply (code/edit_formats.py): each is one search of the file
# (2 MB at most), so this bounds the time a reply of many tiny blocks takes. A fix is one to a
# few blocks, a refactor of a function a dozen; 50 is far beyond that and checked in well under
# a second.
MAX_EDIT_BLOCKS = 50

# -- diagnostics (code/prompts.py, server/code_actions.py, server/fixing.py, ace fix) ----------

# Characters of a diagnostic's message put in a prompt: long type errors (pyright, mypy) run to a
# few hundred; beyond 1,000 a message is a dump that helps no model and costs masking time.
MAX_MESSAGE_CHARS = 1_000
# Characters of a diagnostic's message in a code action's title: editors show one line of a menu.
MAX_TITLE_CHARS = 100
# Diagnostics one request may carry into a fix (codeAction, fix-all, `ace fix --diagnostics`);
# more are dropped with one warning. An editor sends the few under the cursor or, for fix-all,
# a file's worth; 200 is a very untidy file, and each span group is a model call.
MAX_DIAGNOSTICS = 200

# What else a diagnostic knows, on its way to a prompt (code/diagnostics.py reads it, prompts.py
# writes it); each field has a cap of its own.
# The `source` and `code` of a diagnostic, and the name of another file a related location is in:
# ruff's codes are 4 characters, eslint's longest rule names (`@typescript-eslint/…`) about 50.
MAX_LABEL_CHARS = 100
# `codeDescription.href`: rule pages run to about 100 characters. A longer URL is dropped, not cut
# (a cut URL points nowhere).
MAX_HREF_CHARS = 500
# Related locations read per diagnostic: compilers attach one to three ("first defined here", "the
# other branch"); beyond 5 they are a listing that tells a model nothing the code does not.
MAX_RELATED = 5
# Characters of a related location's message, and of each of its lines quoted from the file: a
# related note is a phrase, and a line of code past 300 characters is minified or generated.
MAX_RELATED_CHARS = 300
# Lines quoted from the file for a related location: the line it points at and the next two.
MAX_RELATED_LINES = 3
# A diagnostic's `data` as compact JSON: ruff's (the rule, its fix's edits) runs to a few hundred
# characters; beyond 1,000 it is a dump, like a message that long.
MAX_DATA_CHARS = 1_000

# -- reviews written as text (code/review_text.py, code/review.py) --------------------------------

# Findings read from one review reply written as prose rather than JSON. A real review of one
# function names a handful; a reply listing more is a dump, and each finding is a diagnostic.
MAX_TEXT_FINDINGS = 50
# Characters of one such finding's message: the prompt asks for one sentence, and a diagnostic's
# message is shown on one line; a list item may run on over continuation lines.
MAX_FINDING_CHARS = 500

# -- CPU-heavy checks (ace.py, call.py): run in a worker thread, never on the event loop ---------

# Seconds that masking a prompt or checking one reply (patch gate, review parsing) may take. Both
# are linear and take milliseconds on any file ACE accepts (2 MB); 10 s means something is wrong,
# and the user gets a refusal instead of a wait. (A thread cannot be stopped: it finishes in the
# background, its result unused.)
CHECK_TIMEOUT_S = 10.0
# Seconds one ruff run may take when the patch gate re-checks a patched file (code/verify.py);
# ruff checks a 2,000-line file in ~10 ms. Past this the patch is offered as unverified, and two
# runs stay well inside CHECK_TIMEOUT_S.
VERIFY_TIMEOUT_S = 4.0


def reply_bytes(output_tokens: int) -> int:
    """The most bytes of reply text read for a request that asks for `output_tokens` tokens."""
    return max(output_tokens * REPLY_BYTES_PER_TOKEN, REPLY_BYTES_FLOOR)


def clip(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters, the cut marked with an ellipsis."""
    return text if len(text) <= limit else text[: max(limit - 1, 0)] + "…"
