"""One redactor for every text Syncline stores or shows: errors, events, log lines.

It takes out what must never leave a run: the secrets of the workspace (every password,
token and key its sources and destinations were given, remembered as they are parsed, and
a URL's password) and the row values databases and APIs quote in their messages
(PostgreSQL's `DETAIL: Key (email)=(…)`, MySQL's `Duplicate entry '…'`, DuckDB's
`Could not convert string '…'`). What stays says what happened, where, and how to fix it.
"""

from __future__ import annotations

import re
import threading
from typing import Any

from pydantic import BaseModel, SecretStr

MASK = "***"
HIDDEN = "…"
_MIN_SECRET = 4  # shorter values would mask ordinary words
_SECRETS: set[str] = set()
_LOCK = threading.Lock()

_URL_PASSWORD = re.compile(r"(\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s:/@]*:)[^\s@/]+(@)")
_KEYWORD_PASSWORD = re.compile(r"(?i)\b(password|passwd|pwd|secret|token|api_key|apikey|access_token)"
                               r"(\s*[=:]\s*)(['\"]?)(?!\$\{)[^\s'\"&,;`]{3,}\3")
_SHELL_REF = re.compile(r"^\$\{?[A-Za-z_][A-Za-z0-9_]*\}?$")
_LOOKS_LIKE_DSN = re.compile(r"://|\b(host|dbname|user)=")
_BEARER = re.compile(r"\b(Bearer|Basic) (?![a-z]+\b)[A-Za-z0-9._~+/=-]{8,}")  # not a word of prose
#: (pattern, replacement): values quoted by databases and APIs
_ROW_VALUES: list[tuple[re.Pattern[str], str]] = [
    # PostgreSQL: DETAIL:  Key (email)=(ann@example.com) already exists.
    (re.compile(r"(Key \([^)]*\)=\().*?(\)(?: already exists| is not present| conflicts|\.|$))",
                re.M), rf"\g<1>{HIDDEN}\g<2>"),
    # PostgreSQL: Failing row contains (1, ann, null).
    (re.compile(r"(Failing row contains \().*(\))"), rf"\g<1>{HIDDEN}\g<2>"),
    # PostgreSQL: invalid input syntax for type integer: "abc"; invalid input value for enum
    (re.compile(r"(invalid input (?:syntax|value) for (?:type |enum )?[\w .()]+: )\".*?\""),
     rf'\g<1>"{HIDDEN}"'),
    # MySQL: Duplicate entry 'ann@example.com' for key 'users.email'
    (re.compile(r"(Duplicate entry )'.*?'( for key)"), rf"\g<1>'{HIDDEN}'\g<2>"),
    # MySQL: Incorrect integer value: 'abc' for column 'n'; Truncated incorrect DOUBLE value: 'x'
    (re.compile(r"((?:Incorrect|Truncated incorrect) [\w ]+ value: )'.*?'"), rf"\g<1>'{HIDDEN}'"),
    # DuckDB: Could not convert string 'abc' to INT32; Duplicate key "id: 5" violates ...
    (re.compile(r"(Could not convert string )(['\"]).*?\2"), rf"\g<1>'{HIDDEN}'"),
    (re.compile(r"(Duplicate key )\".*?\"( violates)"), rf'\g<1>"{HIDDEN}"\g<2>'),
    # DuckDB / PostgreSQL: ... value "abc" is out of range; Conversion Error: ... "abc"
    (re.compile(r"(value )\"[^\"]*\"( is out of range)"), rf'\g<1>"{HIDDEN}"\g<2>'),
]


def remember(secret: str | None) -> None:
    """A secret of the workspace: masked wherever it appears (and, for a DSN or URL, its
    password alone too)."""
    if not secret or _SHELL_REF.match(secret):  # `$NAME` taken literally: the hint quotes it
        return
    found = {m.group(0)[len(m.group(1)):-1] for m in _URL_PASSWORD.finditer(secret)}
    found |= {m.group(0).split(m.group(2), 1)[1].strip("'\"") for m in _KEYWORD_PASSWORD.finditer(secret)}
    if not found and not _LOOKS_LIKE_DSN.search(secret):  # a DSN without a password hides nothing
        found = {secret}
    with _LOCK:
        _SECRETS.update(s for s in found if len(s) >= _MIN_SECRET)


def redact(text: str) -> str:
    """`text` without the workspace's secrets and without quoted row values."""
    if not text:
        return text
    with _LOCK:
        secrets = sorted(_SECRETS, key=len, reverse=True)
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    text = _URL_PASSWORD.sub(rf"\g<1>{MASK}\g<2>", text)
    text = _KEYWORD_PASSWORD.sub(rf"\g<1>\g<2>\g<3>{MASK}\g<3>", text)
    text = _BEARER.sub(rf"\g<1> {MASK}", text)
    for pattern, replacement in _ROW_VALUES:
        text = pattern.sub(replacement, text)
    return text


def redact_all(value: Any) -> Any:
    """Every string inside a JSON-like value, redacted."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: redact_all(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact_all(v) for v in value]
    return value


#: keys whose text values are secrets (besides every SecretStr field)
_SECRET_KEYS = ("password", "secret", "token", "dsn", "api_key", "apikey", "credential", "private_key")


def remember_config(value: Any, key: str = "") -> None:
    """Every password, token and key of a source's or destination's config, for the redactor
    to mask wherever it would appear (redact.py)."""
    if isinstance(value, SecretStr):
        remember(value.get_secret_value())
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            remember_config(getattr(value, name, None), name)
    elif isinstance(value, dict):
        for k, v in value.items():
            remember_config(v, str(k))
    elif isinstance(value, (list, tuple)):
        for v in value:
            remember_config(v, key)
    elif isinstance(value, str) and any(w in key.lower() for w in _SECRET_KEYS):
        remember(value)
