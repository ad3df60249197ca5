"""Read the reference's ``options.pkl`` without running code from it or exhausting memory.

A pickle can name any importable callable and have it called while loading (``os.system``
included). This unpickler resolves only the classes a pickled ``argparse.Namespace`` of
options needs; any other global is refused before it is ever called. Those few classes can
still be asked for huge objects (``bytearray(10**10)``, ``set(range(10**10))``), and a small
pickle can share one list under another until walking it never ends; so the file, the sizes
the allowed classes are called with, and the depth and count of the values are bounded, far
above what an options Namespace holds (about 2 KB, 60 flat values).
"""

from __future__ import annotations

import argparse
import builtins
import copyreg
import io
import pathlib
import pickle
from pathlib import Path
from typing import Any

MAX_PICKLE_BYTES = 1 << 20  # an options file; the reference's are about 2 KB
MAX_ITEMS = 1 << 16  # the most elements a range or bytearray made while unpickling may hold
MAX_DEPTH = 32  # nesting of containers in the options
MAX_VALUES = 1 << 16  # values visited when the options are made plain (shared ones each time)


def _range(*args: int) -> range:
    made = range(*args)
    try:
        size = len(made)
    except OverflowError:  # longer than sys.maxsize
        size = MAX_ITEMS + 1
    if size > MAX_ITEMS:
        raise pickle.UnpicklingError(f"refusing a range of more than {MAX_ITEMS} items")
    return made


def _bytearray(*args: Any) -> bytearray:
    if args and isinstance(args[0], int) and args[0] > MAX_ITEMS:
        raise pickle.UnpicklingError(f"refusing a bytearray of {args[0]} bytes (> {MAX_ITEMS})")
    return bytearray(*args)


def _reconstructor(cls: type, base: type, state: Any) -> Any:
    """copyreg's helper for protocols 0 and 1, limited to plain objects (``base`` object): with
    another base it calls ``base(state)``, e.g. bytearray(10**10)."""
    if base is not object:
        raise pickle.UnpicklingError(
            f"refusing to rebuild {getattr(cls, '__name__', cls)} from "
            f"{getattr(base, '__name__', base)} (only plain objects may be rebuilt)"
        )
    return copyreg._reconstructor(cls, base, state)


_PATH_CLASSES = ("Path", "PosixPath", "WindowsPath", "PurePath", "PurePosixPath", "PureWindowsPath")
ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    ("argparse", "Namespace"): argparse.Namespace,
    **{("pathlib", name): getattr(pathlib, name) for name in _PATH_CLASSES},
    # Python >= 3.13 pickles paths from pathlib._local; they map onto the same classes.
    **{("pathlib._local", name): getattr(pathlib, name) for name in _PATH_CLASSES},
    **{
        ("builtins", name): getattr(builtins, name)
        for name in ("set", "frozenset", "complex", "slice", "object")
    },
    # Sized by the wrappers above; set/frozenset can then only hold what the file or a
    # bounded range gives them.
    ("builtins", "range"): _range,
    ("builtins", "bytearray"): _bytearray,
    ("copyreg", "_reconstructor"): _reconstructor,
}
# What a hostile pickle can make the unpickler raise besides UnpicklingError.
_LOAD_ERRORS = (pickle.UnpicklingError, EOFError, ValueError, TypeError, NotImplementedError,
                AttributeError, IndexError, KeyError, OverflowError, MemoryError, RecursionError)  # fmt: skip

_PY2_MODULES = {"copy_reg": "copyreg", "__builtin__": "builtins"}


class OptionsUnpickler(pickle.Unpickler):
    """Unpickler that admits argparse.Namespace, pathlib paths and builtin value types only."""

    def find_class(self, module: str, name: str) -> Any:
        module = _PY2_MODULES.get(module, module)  # protocols 0-2 write Python 2 module names
        try:
            return ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"refusing {module}.{name}: an options pickle may only hold argparse.Namespace, "
                "pathlib paths and builtin values"
            ) from None


def _plain(value: Any, depth: int = 0, visited: list[int] | None = None) -> Any:
    """Paths become strings and containers are walked, so the result is JSON-friendly.

    Refuses nesting deeper than MAX_DEPTH and more than MAX_VALUES values in all (a list shared
    under itself n times is walked 2^n times), with a ValueError instead of a RecursionError or
    a walk that never ends.
    """
    visited = [0] if visited is None else visited
    visited[0] += 1
    if depth > MAX_DEPTH or visited[0] > MAX_VALUES:
        raise ValueError(
            f"nested deeper than {MAX_DEPTH} levels or more than {MAX_VALUES} values in all"
        )
    if isinstance(value, pathlib.PurePath):
        return str(value)
    if isinstance(value, dict):
        return {key: _plain(item, depth + 1, visited) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_plain(item, depth + 1, visited) for item in value)
    return value


def load_options_pickle(path: str | Path) -> dict[str, Any]:
    """The options of a published run (a pickled Namespace or dict) as a plain dict.

    Every failure, a hostile or oversized pickle included, is a ValueError naming the file.
    """
    path = Path(path)
    size = path.stat().st_size
    if size > MAX_PICKLE_BYTES:
        raise ValueError(
            f"cannot read options pickle {path}: {size} bytes, more than the {MAX_PICKLE_BYTES} an "
            "options file may have (the published ones are about 2 KB)"
        )
    try:
        options = OptionsUnpickler(io.BytesIO(path.read_bytes())).load()
        if isinstance(options, argparse.Namespace):
            options = vars(options)
        plain = _plain(options)
    except _LOAD_ERRORS as err:
        why = (
            f"{type(err).__name__}: {err}" if isinstance(err, MemoryError | RecursionError) else err
        )
        raise ValueError(f"cannot read options pickle {path}: {why}") from None
    if not isinstance(plain, dict):
        raise ValueError(f"{path} holds a {type(plain).__name__}, expected an argparse.Namespace")
    return plain


def write_options_pickle(path: str | Path, options: argparse.Namespace) -> None:
    """Write a run's options as the reference does (a pickled Namespace), atomically; refuses
    anything :func:`load_options_pickle` could not read back."""
    from i2sb.atomic import atomic_path

    data = pickle.dumps(options, protocol=pickle.DEFAULT_PROTOCOL)
    try:  # fail here, not in a later reader, on a type the reader refuses
        _plain(OptionsUnpickler(io.BytesIO(data)).load())
    except _LOAD_ERRORS as err:
        raise ValueError(f"cannot write {path}: {err}") from None
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
