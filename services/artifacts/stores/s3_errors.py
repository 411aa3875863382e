"""What S3 and the network say, as treadle's domain errors. Messages never carry credentials."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from treadle.errors import FailedPrecondition, NotFound, PermissionDenied, TreadleError, Unavailable

_MISSING = {"NoSuchKey", "NoSuchObject", "NotFound", "ResourceNotFound"}
_DENIED = {
    "AccessDenied",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "InvalidToken",
    "AllAccessDisabled",
    "AccountProblem",
}
_BUSY = {"SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeout", "RequestTimeTooSkewed"}


@contextlib.contextmanager
def s3_errors(key: str) -> Iterator[None]:
    """Translate minio's and urllib3's exceptions raised inside the block; key names the object in messages."""
    from minio.error import MinioException, S3Error, ServerError
    from urllib3.exceptions import HTTPError

    try:
        yield
    except TreadleError:
        raise
    except S3Error as exc:
        raise _from_s3_error(key, exc) from None
    except ServerError as exc:
        raise Unavailable(f"S3 answered HTTP {exc.status_code} for artifact {key!r}") from None
    except MinioException as exc:
        raise Unavailable(f"S3 call for artifact {key!r} failed: {type(exc).__name__}") from None
    except (HTTPError, OSError) as exc:
        raise Unavailable(f"S3 is unreachable for artifact {key!r}: {type(exc).__name__}") from None


def _from_s3_error(key: str, exc: object) -> TreadleError:
    code = str(getattr(exc, "code", "") or "")
    if code in _MISSING:
        return NotFound("artifact", key)
    if code == "NoSuchBucket":
        return FailedPrecondition(f"the repository's bucket {getattr(exc, 'bucket_name', '')!r} does not exist")
    if code in _DENIED:
        return PermissionDenied(f"S3 refused access to artifact {key!r} ({code})")
    if code in _BUSY:
        return Unavailable(f"S3 is busy or failing for artifact {key!r} ({code}); try again")
    return FailedPrecondition(f"S3 refused the call for artifact {key!r} ({code or 'unknown error'})")
