"""How the tracking step reaches an MLflow store: what kind of URI it is, a lock for sqlite
writers, bounded HTTP retries, and a quick probe so a dead server fails in seconds, naming it."""

from __future__ import annotations

import contextlib
import fcntl
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse


class TrackingUnreachable(RuntimeError):
    """The tracking server does not answer; the message names the URI."""


# HTTP limits for calls to a tracking server, unless the user set them: MLflow's defaults
# (7 retries with exponential back-off, 120 s timeout) turn a dead server into ~4 minutes.
HTTP_LIMITS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_TIMEOUT": "20"}
PROBE_TIMEOUT_S = 8


def is_remote(uri: str) -> bool:
    return urlparse(uri).scheme in ("http", "https", "databricks")


def sqlite_file(uri: str) -> Path | None:
    if not uri.startswith("sqlite:///"):
        return None
    return Path(uri[len("sqlite:///") :])


@contextlib.contextmanager
def store_lock(uri: str) -> Iterator[None]:
    """Serialise writers of one sqlite store (SQLite locks badly over network file systems)."""
    db = sqlite_file(uri)
    if db is None:
        yield
        return
    if not db.parent.is_dir():  # never a silent folder somewhere unexpected (sqlite:////x/...)
        print(f"creating folder {db.parent.resolve()} for the MLflow store {uri}", file=sys.stderr)
        db.parent.mkdir(parents=True, exist_ok=True)
    with open(db.with_name(db.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@contextlib.contextmanager
def http_limits(limits: dict[str, str] | None = None) -> Iterator[None]:
    """Bound MLflow's HTTP retries and timeout (variables the user set win) for the block."""
    added = {k: v for k, v in (limits or HTTP_LIMITS).items() if k not in os.environ}
    os.environ.update(added)
    try:
        yield
    finally:
        for name in added:
            os.environ.pop(name, None)


def check_reachable(uri: str, timeout_s: float = PROBE_TIMEOUT_S) -> None:
    """Raise TrackingUnreachable when an http(s) tracking URI does not answer at all.

    Any HTTP answer (even 401 or 404) counts as reachable; only a refused, reset or timed-out
    connection does not. Local stores are not probed.
    """
    if urlparse(uri).scheme not in ("http", "https"):
        return
    try:
        with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=timeout_s):
            return
    except urllib.error.HTTPError:
        return
    except (OSError, ValueError) as err:
        reason = getattr(err, "reason", None) or err
        raise TrackingUnreachable(
            f"MLflow tracking server {uri} is unreachable ({reason}); start it, or set "
            "tracking.uri (--tracking-uri) to a reachable server or a sqlite:/// file"
        ) from None
