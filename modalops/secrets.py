"""Secrets in URIs: masked wherever printed, given to deployments as environment references.

A tracking URI may carry a database password (`postgresql://user:password@host/db`). Every
message and log masks it (`redact_uri`). A config that must travel (a deployment's parameters,
a flow run's) names the password instead: `postgresql://user:${MLFLOW_DB_PASSWORD}@host/db`,
expanded from the environment of whichever process uses it (`expand_env_refs`), so the stored
copy holds the variable's name, never its value and never a useless `***`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

MASK = "***"
_URI_PASSWORD = re.compile(
    r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^:/@]+):(?P<password>[^@/]+)@"
)
_ENV_REF = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)\}")


class SecretRefError(ValueError):
    """A URI names an environment variable that is not set, or holds a masked password."""


def redact_uri(text: str) -> str:
    """`text` with the password of every `scheme://user:password@host` URI in it masked, for
    logs and messages (a tracking URI may carry a database password)."""
    return _URI_PASSWORD.sub(lambda m: f"{m.group('scheme')}{m.group('user')}:{MASK}@", str(text))


def uri_password(uri: str) -> str | None:
    """The password written in `uri` (`scheme://user:password@...`), or None."""
    m = _URI_PASSWORD.match(uri)
    return None if m is None else m.group("password")


def env_refs(text: str) -> list[str]:
    """Names of the `${NAME}` environment references in `text`."""
    return [m.group("name") for m in _ENV_REF.finditer(text)]


def expand_env_refs(text: str, field: str, environ: Mapping[str, str] | None = None) -> str:
    """`text` with each `${NAME}` replaced by the environment variable's value; a missing
    variable is an error naming `field` and the variable. A password that is the mask itself
    (a copy of a masked dump) is refused: it would be sent to the server as the password."""
    env = os.environ if environ is None else environ
    missing = [n for n in env_refs(text) if n not in env]
    if missing:
        raise SecretRefError(
            f"{field}: names ${{{missing[0]}}}, which is not set in this process's environment "
            "(set it where the run executes: the worker's environment for a deployment)"
        )
    expanded = _ENV_REF.sub(lambda m: env[m.group("name")], text)
    if uri_password(text) == MASK:
        raise SecretRefError(
            f"{field}: the password is the mask {MASK!r} (a copy of a masked config dump); "
            "write it as an environment reference, e.g. postgresql://user:${MLFLOW_DB_PASSWORD}@"
            "host/db, or leave it out and use PGPASSWORD or a .pgpass file"
        )
    return expanded
