"""`${env:NAME}` references in the workspace file: substituted from the environment when the
file is read; inside a source, destination or channel, one whose variable is unset is kept as
written and fails only the commands that open that section (for a channel: its deliveries)."""

from __future__ import annotations

import os
import re
import socket
from typing import Any

from pydantic import SecretStr

from syncline.errors import ConfigurationError

_ENV_REF = re.compile(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}")
_BARE_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")  # ${NAME}: a shell habit, not a reference
#: An unset `${env:NAME}`: the key path where it is written, and NAME.
UnsetRef = tuple[tuple[str, ...], str]


_SHELL_VAR = re.compile(r"^\$([A-Za-z_][A-Za-z0-9_]*)$")


def literal_hint(secret: SecretStr | str | None) -> str:
    """When a password that failed is written `$NAME` (a shell habit, taken literally), the
    fix: how to read the variable instead; else empty. Names only the variable."""
    text = secret.get_secret_value() if isinstance(secret, SecretStr) else secret
    match = _SHELL_VAR.match(text or "")
    if match is None:
        return ""
    return (f"; the password is the literal text ${match[1]}: to read the environment variable, "
            f"write password: ${{env:{match[1]}}}")


def unset_error(file: str, refs: tuple[UnsetRef, ...]) -> ConfigurationError:
    path, name = refs[0]
    more = f" (and {', '.join(n for _, n in refs[1:])})" if refs[1:] else ""
    return ConfigurationError(
        f"{file}: {'.'.join(path)}: environment variable {name} is not set{more} on "
        f"{socket.gethostname()}",
        fix=f"export {name}=... before running (for `up`, in the environment it starts in), or "
        "change the reference",
    )


def interpolate(value: Any, path: tuple[str, ...], file: str,
                 unset: list[UnsetRef] | None = None) -> Any:
    """Substitute `${env:NAME}`. With `unset`, a reference inside a source or destination whose
    variable is not set is kept as written and recorded there (only opening that section
    fails); anywhere else it is an error at once."""
    if isinstance(value, dict):
        return {k: interpolate(v, (*path, str(k)), file, unset) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, (*path, str(i)), file, unset) for i, v in enumerate(value)]
    if isinstance(value, str) and "${" in value:
        bare = _BARE_REF.search(value)
        if bare:
            raise ConfigurationError(
                f"{file}: {'.'.join(path)}: ${{{bare.group(1)}}} is not a reference Syncline reads",
                fix=f"write ${{env:{bare.group(1)}}} to use the environment variable {bare.group(1)}",
            )

        def sub(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in os.environ:
                return os.environ[name]
            if unset is not None and len(path) > 2 and path[0] in ("sources", "destinations", "channels"):
                unset.append((path, name))
                return match.group(0)
            raise unset_error(file, ((path, name),))

        return _ENV_REF.sub(sub, value)
    return value
