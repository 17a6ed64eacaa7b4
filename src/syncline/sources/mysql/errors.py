"""MySQL/MariaDB driver errors as Syncline errors, by what the caller should do."""

from __future__ import annotations

import pymysql
import pymysql.converters
import pymysql.cursors

from syncline.env_refs import literal_hint
from syncline.errors import (
    ConfigurationError,
    SourceError,
    SynclineError,
    TransientError,
)

# -- errors ------------------------------------------------------------------------------

# server codes (ER_*) and client codes (CR_*) worth a retry
TRANSIENT_CODES = {
    0: "connection closed", 1040: "too many connections", 1053: "server shutting down",
    1205: "lock wait timeout", 1213: "deadlock", 1317: "query interrupted",
    1927: "connection killed", 1969: "statement timeout", 2002: "cannot connect",
    2003: "cannot connect", 2006: "server has gone away", 2013: "lost connection",
    2055: "lost connection", 3024: "statement timeout",
}
CREDENTIAL_CODES = {1045, 1698}
DATABASE_DENIED = 1044
PRIVILEGE_CODES = {1142, 1143, 1227}
MISSING_CODES = {1146, 1054, 1109}


def classify(exc: pymysql.MySQLError, what: str, *, source: str, password: str,
             connecting: bool = False, stream: str | None = None) -> SynclineError:
    """The Syncline error for a driver error; the password never appears in the message."""
    code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else -1
    text = str(exc.args[1]) if len(exc.args) > 1 else str(exc)
    if password:
        text = text.replace(password, "***")
    message = f"{what}: ({code}) {text}"
    if code == DATABASE_DENIED:  # what a user who may not see it gets for a missing database too
        return ConfigurationError(message, stream=stream,
                                  fix=f"check `database` (or the path of `dsn`) of source '{source}', "
                                  "and that the user may read it: GRANT SELECT, SHOW VIEW ON db.* TO user")
    if code in CREDENTIAL_CODES:
        return ConfigurationError(message, stream=stream,
                                  fix=f"check `user` and `password` (or the `dsn`) of source '{source}'"
                                  + literal_hint(password))
    if code == 1049:
        return ConfigurationError(message, stream=stream,
                                  fix=f"check `database` (or the path of `dsn`) of source '{source}'")
    if code in PRIVILEGE_CODES:
        return ConfigurationError(message, stream=stream,
                                  fix="grant the user SELECT on the database: GRANT SELECT ON db.* TO user")
    if code in MISSING_CODES:
        return ConfigurationError(message, stream=stream,
                                  fix="run `syncline discover` and update the workspace to the tables "
                                  "and columns the database has now")
    if code in TRANSIENT_CODES:
        fix = "retried automatically"
        if connecting:
            fix += f"; check the server is up and `host`/`port` (or the `dsn`) of source '{source}'"
        return TransientError(message, stream=stream, fix=fix)
    if isinstance(exc, pymysql.err.OperationalError) and connecting:
        return TransientError(message, stream=stream, fix="retried automatically")
    return SourceError(message, stream=stream, fix="see the server's message above")
