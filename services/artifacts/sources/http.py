"""An input artifact fetched over HTTP(S), streamed (the standard library's urllib, in worker threads).

Credentials (basic auth or a bearer token) come from secret files and go in an
``Authorization`` header that is not forwarded on redirects. A 404 or 410 is
NotFound (an optional artifact is then skipped); other failures name the URL
without its query string, which may hold a signature.

The service may hold more privileges than a step, so it refuses link-local
destinations (cloud metadata services such as 169.254.169.254), also when a
redirect points there.
"""

from __future__ import annotations

import base64
import ipaddress
import re
import socket
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from http.client import HTTPException, HTTPMessage, HTTPResponse
from typing import IO
from urllib.parse import urlsplit

from treadle.errors import DataLoss, FailedPrecondition, InvalidSpec, NotFound, PermissionDenied, Unavailable
from treadle.secrets import SecretFiles
from treadle.workflow.v1 import workflow_pb2

from .._threads import blocking
from ..stores.base import CHUNK_BYTES, ObjectInfo, ObjectReader
from .describe import redact_url

_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # RFC 9110 token


async def open_http(spec: workflow_pb2.HTTPArtifact, secrets: SecretFiles, *, timeout: float) -> ObjectReader:
    """Start the download; the reader's info has the size when the server sent one (else -1) and no digest."""
    shown = redact_url(spec.url)
    request = build_request(spec, secrets)
    try:
        response: HTTPResponse = await blocking(_open, request, timeout)
    except urllib.error.HTTPError as exc:
        exc.close()
        raise _status_error(exc.code, shown) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise Unavailable(f"{shown} is unreachable: {reason}") from None
    length = response.headers.get("Content-Length")
    size = int(length) if length and length.isdigit() else -1

    async def close() -> None:
        await blocking(response.close)

    return ObjectReader(ObjectInfo(key=shown, size=size, sha256=""), _body(response, size, shown), on_close=close)


def build_request(spec: workflow_pb2.HTTPArtifact, secrets: SecretFiles) -> urllib.request.Request:
    parts = urlsplit(spec.url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidSpec(f"{redact_url(spec.url)!r} is not an http:// or https:// URL", field="http.url")
    request = urllib.request.Request(spec.url, method="GET")
    for i, header in enumerate(spec.headers):
        if not _HEADER_NAME.fullmatch(header.name) or any(c in header.value for c in "\r\n\0"):
            raise InvalidSpec("is not a valid HTTP header", field=f"http.headers[{i}]")
        request.add_header(header.name, header.value)
    authorization = _authorization(spec.auth, secrets)
    if authorization:
        request.add_unredirected_header("Authorization", authorization)  # never sent to a redirect target
    return request


def _authorization(auth: workflow_pb2.HTTPAuth, secrets: SecretFiles) -> str:
    if auth.HasField("basic_auth") and auth.HasField("bearer_token"):
        raise InvalidSpec("give basicAuth or bearerToken, not both", field="http.auth")
    if auth.HasField("basic_auth"):
        user = auth.basic_auth.username_secret
        password = auth.basic_auth.password_secret
        pair = (
            f"{secrets.read(user.name, user.key, field='http.auth.basicAuth.usernameSecret')}:"
            f"{secrets.read(password.name, password.key, field='http.auth.basicAuth.passwordSecret')}"
        )
        return "Basic " + base64.b64encode(pair.encode()).decode()
    if auth.HasField("bearer_token"):
        token = auth.bearer_token.token_secret
        return "Bearer " + secrets.read(token.name, token.key, field="http.auth.bearerToken.tokenSecret").strip()
    return ""


def _open(request: urllib.request.Request, timeout: float) -> HTTPResponse:
    check_destination(request.full_url)
    response: HTTPResponse = urllib.request.build_opener(_CheckedRedirects()).open(request, timeout=timeout)
    return response


def check_destination(url: str) -> None:
    """Refuse a URL whose host resolves to a link-local address (where cloud metadata services answer)."""
    host = urlsplit(url).hostname or ""
    try:
        addresses = {str(info[4][0]) for info in socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)}
    except OSError:
        return  # unresolvable: the request itself reports it
    for address in addresses:
        if ipaddress.ip_address(address.split("%", 1)[0]).is_link_local:
            raise PermissionDenied(f"{redact_url(url)} resolves to a link-local address, which is not fetched")


class _CheckedRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: HTTPMessage,
        newurl: str,
    ) -> urllib.request.Request | None:
        try:
            check_destination(newurl)
        except PermissionDenied:
            fp.close()  # the redirect's own response, which urllib would otherwise leave open
            raise
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _status_error(code: int, shown: str) -> Exception:
    if code in (404, 410):
        return NotFound("http artifact", shown)
    if code in (401, 403):
        return PermissionDenied(f"{shown} answered HTTP {code}; check the artifact's credentials")
    if code in (408, 429) or code >= 500:
        return Unavailable(f"{shown} answered HTTP {code}")
    return FailedPrecondition(f"{shown} answered HTTP {code}", subject=shown)


async def _body(response: HTTPResponse, size: int, shown: str) -> AsyncIterator[bytes]:
    received = 0
    while True:
        try:
            chunk = await blocking(response.read, CHUNK_BYTES)
        except (OSError, HTTPException) as exc:
            raise Unavailable(f"{shown}: the download broke off after {received} bytes: {exc}") from None
        if not chunk:
            break
        received += len(chunk)
        yield chunk
    if size >= 0 and received != size:
        raise DataLoss(f"{shown}: received {received} bytes, but the server announced {size}")
