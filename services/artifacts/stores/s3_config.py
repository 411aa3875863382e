"""Where an S3 repository is and how to sign in: from a URI or an Argo-shaped mapping.

URI form (no credentials in it, ever)::

    s3://bucket[/prefix]?endpoint=host:port&region=us-east-1&insecure=1
        &accessKeyEnv=NAME&secretKeyEnv=NAME            credentials from environment variables
        &credentialsDir=/path[&accessKeyFile=accesskey&secretKeyFile=secretkey]   ... or from files
        &anonymous=1 | &useSDKCreds=1                   ... or none, or the AWS chain (env, config, IAM)
        &partSize=16777216

Mapping form: the ``s3`` block of an Argo artifact repository (``endpoint``,
``bucket``, ``region``, ``insecure``, ``keyPrefix``, ``accessKeySecret``,
``secretKeySecret``, ``sessionTokenSecret``, ``useSDKCreds``), plus the
URI's parameter names. Without any credential setting, the keys come from
``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` (and ``AWS_SESSION_TOKEN``).

Credentials are read at each request (files are re-read when they change), so
rotated Kubernetes Secrets take effect without a restart.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import SplitResult, parse_qsl, unquote

import certifi
import urllib3
from minio import Minio
from minio.credentials.credentials import Credentials
from minio.credentials.providers import (
    AWSConfigProvider,
    ChainedProvider,
    EnvAWSProvider,
    IamAwsProvider,
    Provider,
)

from treadle.errors import InvalidSpec
from treadle.secrets import SecretFiles, read_env, read_secret_file

from .s3 import DEFAULT_PART_BYTES, S3Store

AWS_ENDPOINT = "s3.amazonaws.com"
DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_READ_TIMEOUT = 120.0
_URI_PARAMS = {
    "endpoint",
    "region",
    "insecure",
    "accessKeyEnv",
    "secretKeyEnv",
    "sessionTokenEnv",
    "credentialsDir",
    "accessKeyFile",
    "secretKeyFile",
    "anonymous",
    "useSDKCreds",
    "partSize",
    "keyFormat",  # read by the repository layer
}
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_MAPPING_ONLY = {"bucket", "keyPrefix", "prefix", "accessKeySecret", "secretKeySecret", "sessionTokenSecret"}


@dataclass(frozen=True)
class S3Credentials:
    """How to sign requests. Holds names and paths only, never a key, so it is safe to print."""

    source: Literal["env", "files", "anonymous", "sdk"] = "env"
    access_key: str = "AWS_ACCESS_KEY_ID"  # a variable name (env) or a file path (files)
    secret_key: str = "AWS_SECRET_ACCESS_KEY"
    session_token: str = ""  # optional, same kind as the others


@dataclass(frozen=True)
class S3Config:
    bucket: str
    endpoint: str = AWS_ENDPOINT
    prefix: str = ""
    region: str = ""
    secure: bool = True
    credentials: S3Credentials = field(default_factory=S3Credentials)
    part_size: int = DEFAULT_PART_BYTES
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    read_timeout: float = DEFAULT_READ_TIMEOUT

    @property
    def location(self) -> str:
        """For logs and GetRepository: where objects go, without credentials."""
        return f"s3://{self.bucket}/{self.prefix} ({'https' if self.secure else 'http'}://{self.endpoint})"


def s3_config_from_uri(parts: SplitResult) -> S3Config:
    if parts.username is not None or parts.password is not None:
        raise InvalidSpec(
            "credentials are not accepted in the repository URI; use environment variables or files",
            field="artifactRepository",
        )
    params: dict[str, str] = {}
    for name, value in parse_qsl(parts.query, keep_blank_values=True, strict_parsing=False):
        if name not in _URI_PARAMS:
            raise InvalidSpec(f"unknown s3 repository parameter {name!r}", field="artifactRepository")
        params[name] = value
    bucket = parts.hostname or ""
    return _build(bucket, unquote(parts.path).strip("/"), params, None, "artifactRepository")


def s3_config_from_mapping(doc: Mapping[str, Any], secrets: SecretFiles | None, where: str) -> S3Config:
    unknown = set(doc) - _URI_PARAMS - _MAPPING_ONLY
    if unknown:
        raise InvalidSpec(f"unknown s3 repository field(s) {', '.join(sorted(unknown))}", field=where)
    params = {k: _text(v) for k, v in doc.items() if k in _URI_PARAMS}
    prefix = str(doc.get("prefix") or doc.get("keyPrefix") or "").strip("/")
    selectors = {k: doc[k] for k in ("accessKeySecret", "secretKeySecret", "sessionTokenSecret") if doc.get(k)}
    return _build(str(doc.get("bucket") or ""), prefix, params, _secret_paths(selectors, secrets, where), where)


def open_s3_store(config: S3Config) -> S3Store:
    """An S3Store with a minio client that never retries and times out every request."""
    http = urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=config.connect_timeout, read=config.read_timeout),
        retries=False,  # drivers never retry; callers do
        maxsize=16,
        cert_reqs="CERT_REQUIRED",
        ca_certs=os.environ.get("SSL_CERT_FILE") or certifi.where(),
    )
    client = Minio(
        config.endpoint,
        secure=config.secure,
        region=config.region or None,
        http_client=http,
        credentials=credentials_provider(config.credentials),
    )
    return S3Store(client, config.bucket, prefix=config.prefix, location=config.location, part_size=config.part_size)


def credentials_provider(creds: S3Credentials) -> Provider | None:
    if creds.source == "anonymous":
        return None
    if creds.source == "sdk":
        return ChainedProvider([EnvAWSProvider(), AWSConfigProvider(), IamAwsProvider()])
    return _SecretProvider(creds)


def _build(
    bucket: str, prefix: str, params: dict[str, str], secret_paths: S3Credentials | None, where: str
) -> S3Config:
    if not _BUCKET.fullmatch(bucket):
        raise InvalidSpec(f"{bucket!r} is not an S3 bucket name", field=where)
    endpoint = params.get("endpoint") or AWS_ENDPOINT
    if "/" in endpoint or "@" in endpoint:
        raise InvalidSpec(f"endpoint {endpoint!r} must be host[:port], without scheme or credentials", field=where)
    try:
        part_size = int(params.get("partSize") or DEFAULT_PART_BYTES)
    except ValueError:
        raise InvalidSpec(f"partSize {params['partSize']!r} is not a number of bytes", field=where) from None
    return S3Config(
        bucket=bucket,
        endpoint=endpoint,
        prefix=f"{prefix}/" if prefix else "",
        region=params.get("region", ""),
        secure=not _flag(params.get("insecure", "")),
        credentials=secret_paths or _credentials(params, where),
        part_size=part_size,
    )


def _credentials(params: dict[str, str], where: str) -> S3Credentials:
    if _flag(params.get("anonymous", "")):
        return S3Credentials("anonymous", "", "")
    if _flag(params.get("useSDKCreds", "")):
        return S3Credentials("sdk", "", "")
    directory = params.get("credentialsDir")
    if directory:
        root = Path(directory)
        if not root.is_absolute():
            raise InvalidSpec(f"credentialsDir {directory!r} must be an absolute path", field=where)
        return S3Credentials(
            "files",
            str(root / params.get("accessKeyFile", "accesskey")),
            str(root / params.get("secretKeyFile", "secretkey")),
        )
    return S3Credentials(
        "env",
        params.get("accessKeyEnv", "AWS_ACCESS_KEY_ID"),
        params.get("secretKeyEnv", "AWS_SECRET_ACCESS_KEY"),
        params.get("sessionTokenEnv", "AWS_SESSION_TOKEN"),
    )


def _secret_paths(selectors: dict[str, Any], secrets: SecretFiles | None, where: str) -> S3Credentials | None:
    if not selectors:
        return None
    if "accessKeySecret" not in selectors or "secretKeySecret" not in selectors:
        raise InvalidSpec("accessKeySecret and secretKeySecret go together", field=where)
    files = secrets or SecretFiles(None)
    paths = {}
    for name, selector in selectors.items():
        if not isinstance(selector, Mapping):
            raise InvalidSpec(f"{name} must be a mapping with name and key", field=f"{where}.{name}")
        paths[name] = str(files.path(str(selector.get("name", "")), str(selector.get("key", "")), field=name))
    return S3Credentials(
        "files", paths["accessKeySecret"], paths["secretKeySecret"], paths.get("sessionTokenSecret", "")
    )


def _flag(value: str) -> bool:
    return value.lower() in ("1", "true", "yes", "on")


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class _SecretProvider(Provider):
    """A minio credentials provider over environment variables or secret files, read at each request."""

    def __init__(self, creds: S3Credentials) -> None:
        self._creds = creds
        self._cache: dict[str, tuple[tuple[int, int], str]] = {}

    def retrieve(self) -> Credentials:
        c = self._creds
        session = self._value(c.session_token, "S3 session token", optional=True) if c.session_token else None
        return Credentials(
            access_key=self._value(c.access_key, "S3 access key"),
            secret_key=self._value(c.secret_key, "S3 secret key"),
            session_token=session or None,
        )

    def _value(self, where: str, what: str, *, optional: bool = False) -> str:
        if self._creds.source == "env":
            if optional:
                return os.environ.get(where, "")
            return read_env(where, what)
        try:
            st = os.stat(where)
        except OSError:
            if optional:
                return ""
            return read_secret_file(Path(where), what)  # raises, naming the file's problem
        stamp = (st.st_mtime_ns, st.st_ino)
        cached = self._cache.get(where)
        if cached is None or cached[0] != stamp:
            cached = self._cache[where] = (stamp, read_secret_file(Path(where), what))
        return cached[1]
