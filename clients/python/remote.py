"""How a CLI verb reaches the server: a TreadleClient built from --server, the TLS and token flags, and the env.

Flags win over the environment: TREADLE_SERVER, TREADLE_SECURE, TREADLE_CA_CERT,
TREADLE_INSECURE_SKIP_VERIFY, TREADLE_TOKEN and TREADLE_SCHEDULER.
"""

from __future__ import annotations

import argparse
import os
from typing import TYPE_CHECKING

from treadle.client.cli_verbs import CA_CERT_ENV, INSECURE_SKIP_VERIFY_ENV, SCHEDULER_ENV, SECURE_ENV, TOKEN_ENV
from treadle.client.inputs import CommandError

if TYPE_CHECKING:
    from treadle.client.client import TreadleClient
    from treadle.client.connection import ChannelSecurity

_TRUE_WORDS = ("1", "true", "yes", "on")


def _flag(args: argparse.Namespace, name: str, env: str) -> bool:
    given = getattr(args, name, None)
    if given is not None:
        return bool(given)
    return os.environ.get(env, "").strip().lower() in _TRUE_WORDS


def _text(args: argparse.Namespace, name: str, env: str = "") -> str:
    given = getattr(args, name, None)
    if given is not None:
        return str(given)
    return os.environ.get(env, "") if env else ""


def security_from_args(args: argparse.Namespace) -> ChannelSecurity:
    """The TLS and token settings the flags and the environment ask for; CommandError when they cannot work."""
    from treadle.client.connection import ChannelSecurity

    security = ChannelSecurity(
        tls=_flag(args, "secure", SECURE_ENV),
        ca_cert=_text(args, "ca_cert", CA_CERT_ENV),
        client_cert=_text(args, "client_cert"),
        client_key=_text(args, "client_key"),
        insecure_skip_verify=_flag(args, "insecure_skip_verify", INSECURE_SKIP_VERIFY_ENV),
        token=_text(args, "token", TOKEN_ENV),
    )
    problems = security.problems()
    if problems:
        raise CommandError(problems[0])
    return security


def client_for(args: argparse.Namespace) -> TreadleClient:
    """A client for the server the command line names."""
    from treadle.client.client import TreadleClient

    return TreadleClient(
        args.server, security=security_from_args(args), scheduler_address=_text(args, "scheduler", SCHEDULER_ENV)
    )
