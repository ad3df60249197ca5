"""One line instead of a traceback for the errors a user can fix (``--debug`` keeps the traceback).

Library errors (ValueError, FileNotFoundError, KeyError, RuntimeError) already name the file,
key or option; the others below come from the system or from libraries and get a sentence on
what to do. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import errno
import pickle


def _qualified(err: BaseException) -> list[str]:
    return [f"{cls.__module__}.{cls.__name__}" for cls in type(err).__mro__]


def _os_error(err: OSError) -> str:
    where = err.filename or "a file"
    if err.filename2:
        where = f"{err.filename} -> {err.filename2}"
    reason = err.strerror or str(err)
    if err.errno == errno.ENOSPC or err.errno == errno.EDQUOT:
        return f"{where}: {reason}: free disk space (or quota) and rerun; finished work is kept"
    if isinstance(err, PermissionError) or err.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"{where}: {reason}: choose a folder you can write to, or fix its permissions"
    return f"{where}: {reason}"


def describe(err: BaseException) -> str | None:
    """The one-line message for ``err``, or None when a traceback is the right answer (a bug)."""
    names = _qualified(err)
    if isinstance(err, KeyError):
        return str(err.args[0]) if err.args else repr(err)
    if isinstance(err, ValueError | FileNotFoundError | RuntimeError):
        return str(err)
    if isinstance(err, OSError):
        return _os_error(err)
    if isinstance(err, EOFError | pickle.UnpicklingError):
        return f"a file ended early or is not what was expected ({err or type(err).__name__})"
    if any(name.startswith("lmdb.") for name in names):
        return (
            f"LMDB error: {err}; the LMDB is damaged or truncated (e.g. a partial copy of "
            "data.mdb): copy it again or rerun `i2sb data convert`"
        )
    if "PIL.Image.DecompressionBombError" in names:
        return f"{err} Reduce the image, or raise PIL.Image.MAX_IMAGE_PIXELS if you trust it."
    if any(name.startswith("mlflow.") for name in names):
        message = getattr(err, "message", None) or str(err)
        return f"MLflow: {message.strip().splitlines()[0]} (check tracking.uri and the server)"
    if isinstance(err, TypeError):
        return (
            f"{err}: a value of the wrong type reached i2sb (check the config and options "
            "named above); rerun with --debug for the traceback and report it if the input is fine"
        )
    return None
