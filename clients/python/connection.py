"""How the client reaches a server: plaintext or TLS, and an optional bearer token.

    security = ChannelSecurity(tls=True, ca_cert="ca.pem", token=os.environ["TREADLE_TOKEN"])
    async with TreadleClient("treadle.example.com:443", security=security) as client: ...

treadle's own servers speak plaintext: TLS is ended by what stands in front of
them (a service mesh sidecar, an ingress). The token travels as
`authorization: Bearer <token>` metadata on every call, over plaintext too
(a mesh sidecar on localhost may be the one that checks it); treadle's servers
do not check it today.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from treadle import errors
from treadle.grpcutil.channels import open_channel

AUTHORIZATION = "authorization"
# How long --insecure-skip-verify may take to fetch the certificate the server presents.
CERTIFICATE_FETCH_TIMEOUT = 5.0


@dataclass(frozen=True)
class ChannelSecurity:
    """TLS and credentials for a client channel. The default is plaintext without a token."""

    tls: bool = False
    # PEM file of the certificate authorities to trust; empty means the system's roots.
    ca_cert: str = ""
    # PEM files of a client certificate and its key, for mutual TLS.
    client_cert: str = ""
    client_key: str = ""
    # Trust whatever certificate the server presents. grpc cannot turn verification
    # off, so the server's certificate is fetched first and then pinned; this works
    # for self-signed certificates, which is what the flag is for.
    insecure_skip_verify: bool = False
    # Sent as `authorization: Bearer <token>` on every call.
    token: str = ""

    @property
    def uses_tls(self) -> bool:
        """TLS was asked for, or implied by a certificate option."""
        return self.tls or bool(self.ca_cert or self.client_cert or self.client_key or self.insecure_skip_verify)

    def problems(self) -> list[str]:
        """What is wrong with these settings, as sentences; empty when they are usable."""
        found: list[str] = []
        if bool(self.client_cert) != bool(self.client_key):
            found.append("a client certificate needs both --client-cert and --client-key")
        if self.insecure_skip_verify and self.ca_cert:
            found.append("--insecure-skip-verify and --ca-cert contradict each other; pass one")
        for path in (self.ca_cert, self.client_cert, self.client_key):
            if path and not Path(path).is_file():
                found.append(f"{path}: no such file")
        return found


def open_client_channel(address: str, security: ChannelSecurity | None = None) -> grpc.aio.Channel:
    """A channel to address with the TLS and token of security (plaintext, no token, when None)."""
    security = security or ChannelSecurity()
    interceptors = bearer_token_interceptors(security.token) if security.token else []
    if not security.uses_tls:
        return open_channel(address, interceptors=interceptors)
    credentials, options = tls_credentials(address, security)
    return open_channel(address, credentials=credentials, interceptors=interceptors, options=options)


def tls_credentials(address: str, security: ChannelSecurity) -> tuple[grpc.ChannelCredentials, list[tuple[str, Any]]]:
    """The channel credentials for security, and the channel options they need."""
    options: list[tuple[str, Any]] = []
    roots: bytes | None = Path(security.ca_cert).read_bytes() if security.ca_cert else None
    if security.insecure_skip_verify:
        roots, certificate_name = presented_certificate(address)
        # The pinned certificate need not name the host we dialled (an IP address, a tunnel).
        options.append(("grpc.ssl_target_name_override", certificate_name))
    chain = Path(security.client_cert).read_bytes() if security.client_cert else None
    key = Path(security.client_key).read_bytes() if security.client_key else None
    credentials = grpc.ssl_channel_credentials(root_certificates=roots, private_key=key, certificate_chain=chain)
    return credentials, options


def split_address(address: str) -> tuple[str, int]:
    """("host", port) of "host:port", "[v6]:port" or "dns:///host:port"; port 443 when none is given."""
    target = address.removeprefix("dns:///").removeprefix("dns:")
    host, sep, port = target.rpartition(":")
    if not sep or not port.isdigit() or (host.count(":") and not host.startswith("[")):
        return target.strip("[]"), 443
    return host.strip("[]"), int(port)


def presented_certificate(address: str) -> tuple[bytes, str]:
    """The PEM certificate the server at address presents, unverified, and a name it is issued to.

    The name comes from a second handshake that trusts exactly that certificate, which
    also checks that it can serve as its own root (it is self-signed). Both handshakes
    block, once, when the channel opens. Raises Unavailable when the server cannot be
    reached, TreadleError when its certificate is not self-signed.
    """
    host, port = split_address(address)
    trusting_anything = ssl.create_default_context()
    trusting_anything.check_hostname = False
    trusting_anything.verify_mode = ssl.CERT_NONE
    try:
        with _handshake(host, port, trusting_anything) as tls:
            der = tls.getpeercert(binary_form=True)
        if not der:
            raise errors.TreadleError(f"the server at {address} presented no certificate")
        pem = ssl.DER_cert_to_PEM_cert(der)
        pinned = ssl.create_default_context(cadata=pem)
        pinned.check_hostname = False
        with _handshake(host, port, pinned) as tls:
            details = tls.getpeercert() or {}
    except ssl.SSLCertVerificationError as exc:
        raise errors.TreadleError(
            f"--insecure-skip-verify needs a self-signed server certificate ({exc.verify_message}); "
            "pass the issuing CA with --ca-cert instead"
        ) from None
    except OSError as exc:
        raise errors.Unavailable(f"cannot fetch the server's certificate: {exc}") from None
    return pem.encode(), certificate_name(dict(details), host)


@contextlib.contextmanager
def _handshake(host: str, port: int, context: ssl.SSLContext) -> Iterator[ssl.SSLSocket]:
    """A TLS connection to host:port, handshake done, closed on exit."""
    context.set_alpn_protocols(["h2"])
    with (
        socket.create_connection((host, port), timeout=CERTIFICATE_FETCH_TIMEOUT) as raw,
        context.wrap_socket(raw, server_hostname=None if _is_ip(host) else host) as tls,
    ):
        yield tls


def certificate_name(details: dict[str, Any], dialled_host: str) -> str:
    """A name the certificate is issued to: the dialled host when listed, else its first DNS name, else its CN."""
    alt_names: Sequence[tuple[str, str]] = details.get("subjectAltName", ())
    if any(value == dialled_host for _, value in alt_names):
        return dialled_host
    dns_names = [value for kind, value in alt_names if kind == "DNS"]
    if dns_names:
        return dns_names[0].replace("*.", "wildcard.", 1)
    for rdn in details.get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return str(value)
    return dialled_host


def _is_ip(host: str) -> bool:
    try:
        socket.inet_pton(socket.AF_INET6 if ":" in host else socket.AF_INET, host)
    except OSError:
        return False
    return True


# -- the bearer token -----------------------------------------------------------------


def _with_token(details: grpc.aio.ClientCallDetails, value: str) -> grpc.aio.ClientCallDetails:
    kept = [(k, v) for k, v in (details.metadata or ()) if k != AUTHORIZATION]
    return details._replace(metadata=grpc.aio.Metadata(*kept, (AUTHORIZATION, value)))  # type: ignore[attr-defined, no-any-return]


class _UnaryUnaryToken(grpc.aio.UnaryUnaryClientInterceptor):
    def __init__(self, value: str) -> None:
        self._value = value

    async def intercept_unary_unary(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        return await continuation(_with_token(client_call_details, self._value), request)


class _UnaryStreamToken(grpc.aio.UnaryStreamClientInterceptor):
    def __init__(self, value: str) -> None:
        self._value = value

    async def intercept_unary_stream(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        return await continuation(_with_token(client_call_details, self._value), request)


def bearer_token_interceptors(token: str) -> list[grpc.aio.ClientInterceptor]:
    """Interceptors that send `authorization: Bearer <token>` on every call the client makes.

    An interceptor rather than grpc's call credentials, which refuse plaintext channels.
    """
    value = token if token.lower().startswith("bearer ") else f"Bearer {token}"
    return [_UnaryUnaryToken(value), _UnaryStreamToken(value)]
