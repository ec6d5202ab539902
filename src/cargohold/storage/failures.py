"""Recognise the failures of the stores under the registry: a full disk, an object store,
database or Redis that fails or cannot be reached.

They surface as exceptions from many places (a blob write, an fsync, a SQLite commit, a
boto3 call), so they are classified once, where the HTTP layer turns an unexpected
exception into a response: the client gets an error that says what happened and that a
retry is safe, instead of an opaque internal error.
"""

from __future__ import annotations

import errno
import logging

from botocore import exceptions as boto
from redis import exceptions as redis_errors
from sqlalchemy import exc as sql

from cargohold.errors import RegistryError, StorageFull, StorageUnavailable

_FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
_SQLITE_FULL = "database or disk is full"
# An S3 error answer the service itself may recover from (throttling, its own failures).
_RETRYABLE_S3_STATUS = range(500, 600)

FULL_MESSAGE = (
    "the registry's storage is full: nothing of this request was kept, and what was stored "
    "before is intact. Free space (delete tags and run `cargohold gc`) or grow the volume, "
    "then retry"
)
UNAVAILABLE_MESSAGE = (
    "the registry's {store} failed or could not be reached: nothing of this request became "
    "visible. Retry later; if it persists, an operator should check the {store}"
)


#: The exception types under which the stores' failures arrive.
STORAGE_EXCEPTIONS: tuple[type[BaseException], ...] = (
    OSError,
    sql.SQLAlchemyError,
    boto.BotoCoreError,
    boto.ClientError,
    redis_errors.RedisError,
)


def storage_failure(exc: BaseException) -> RegistryError | None:
    """The registry error `exc` stands for, if it is a storage failure; else None.

    Follows the chain of causes, because libraries wrap what the system reported."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        found = _classify(current)
        if found is not None:
            return found
        current = current.__cause__ or current.__context__
    return None


def _classify(exc: BaseException) -> RegistryError | None:
    if isinstance(exc, OSError) and exc.errno in _FULL_ERRNOS:
        return StorageFull(FULL_MESSAGE, detail={"reason": exc.strerror})
    if isinstance(exc, sql.OperationalError):
        if _SQLITE_FULL in str(exc.orig):
            return StorageFull(FULL_MESSAGE, detail={"reason": _SQLITE_FULL})
        return _unavailable("database")
    if isinstance(exc, sql.DisconnectionError | sql.TimeoutError):
        return _unavailable("database")
    if isinstance(exc, boto.ClientError):
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return _unavailable("object store") if status in _RETRYABLE_S3_STATUS else None
    if isinstance(exc, boto.BotoCoreError):  # connection refused or reset, timeouts
        return _unavailable("object store")
    if isinstance(exc, redis_errors.ConnectionError | redis_errors.TimeoutError):
        return _unavailable("Redis server")
    return None


def _unavailable(store: str) -> StorageUnavailable:
    return StorageUnavailable(UNAVAILABLE_MESSAGE.format(store=store), detail={"store": store})


def log_failure(logger: logging.Logger, exc: BaseException, message: str, *args: object) -> None:
    """Log what stopped a background task: a full disk or a database that is away is the
    operator's to fix, and a warning says which; a traceback is for what the code did not
    expect."""
    known = storage_failure(exc)
    if known is not None:
        logger.warning(message + ": %s", *args, known.message)
    else:
        logger.exception(message, *args, exc_info=exc)
