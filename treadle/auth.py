"""Step tokens: what an executor holds, scoped to its own node and attempt.

A token is `<claims>.<mac>` where claims is url-safe base64 JSON of
(workflow, node id, attempt) and mac is HMAC-SHA256 over it with a secret the
services share. A token for one step can neither read another step's context
nor report another step's outputs.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from treadle.errors import PermissionDenied

STEP_TOKEN_METADATA = "x-treadle-step-token"


@dataclass(frozen=True)
class StepClaims:
    workflow: str
    node_id: str
    attempt: int


class StepTokens:
    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise ValueError("step token secret must be at least 16 bytes")
        self._secret = secret

    def issue(self, workflow: str, node_id: str, attempt: int) -> str:
        claims = json.dumps({"w": workflow, "n": node_id, "a": attempt}, separators=(",", ":")).encode()
        body = base64.urlsafe_b64encode(claims).rstrip(b"=")
        return f"{body.decode()}.{self._mac(body)}"

    def verify(self, token: str) -> StepClaims:
        body, _, mac = token.partition(".")
        if not body or not mac or not hmac.compare_digest(mac, self._mac(body.encode())):
            raise PermissionDenied("invalid step token")
        raw = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        return StepClaims(workflow=str(raw["w"]), node_id=str(raw["n"]), attempt=int(raw["a"]))

    def check(self, token: str | None, workflow: str, node_id: str, attempt: int) -> StepClaims:
        """Verify token and that it belongs to exactly this step attempt."""
        if not token:
            raise PermissionDenied("a step token is required")
        claims = self.verify(token)
        if (claims.workflow, claims.node_id, claims.attempt) != (workflow, node_id, attempt):
            raise PermissionDenied(f"step token is for another step than {workflow}/{node_id} attempt {attempt}")
        return claims

    def _mac(self, body: bytes) -> str:
        return hmac.new(self._secret, body, hashlib.sha256).hexdigest()


def load_or_create_secret(path: Path) -> bytes:
    """The shared token secret: TREADLE_TOKEN_SECRET, or a file created once with mode 0600."""
    env = os.environ.get("TREADLE_TOKEN_SECRET")
    if env:
        return env.encode()
    if path.exists():
        return path.read_bytes().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_hex(32).encode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(secret)
    return secret
