"""A pydantic validation error of `syncline.yaml` as a ConfigurationError: one line per key,
`file: key.path: what is wrong`, with the fix; a secret-looking key's value is never shown."""

from __future__ import annotations

from pydantic import ValidationError

from syncline.errors import ConfigurationError

_SECRET_WORDS = ("password", "secret", "token", "dsn", "api_key", "credential", "auth", "broker",
                 "metadata")


def validation_error(file: str, exc: ValidationError, prefix: tuple[str, ...]) -> ConfigurationError:
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in (*prefix, *err["loc"]))
        kind = err["type"]
        if kind == "extra_forbidden":
            text = f"unknown key '{err['loc'][-1]}'"
            fix = "remove it or check its spelling against the documented keys"
        elif kind == "missing":
            text = "required key is missing"
            fix = "add it"
        else:
            msg = err["msg"].removeprefix("Value error, ")  # keep the value as the user wrote it
            msg = f"{msg[:1].lower()}{msg[1:]}"
            value = err.get("input")
            # Never echo a whole section (it may hold a password) or a secret-looking key.
            secret = any(w in loc.lower() for w in _SECRET_WORDS)
            text = msg if isinstance(value, dict) or secret else f"got {value!r}; {msg}"
            fix = "set the expected value"
        lines.append(f"{file}: {loc}: {text}")
    return ConfigurationError("\n".join(lines), fix=fix if len(lines) == 1 else "fix each key listed above")
