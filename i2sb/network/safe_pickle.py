"""Read the reference's ``options.pkl`` without running code from it.

A pickle can name any importable callable and have it called while loading (``os.system``
included). This unpickler resolves only the classes a pickled ``argparse.Namespace`` of
options needs; any other global is refused before it is ever called.
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

_PATH_CLASSES = ("Path", "PosixPath", "WindowsPath", "PurePath", "PurePosixPath", "PureWindowsPath")
ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    ("argparse", "Namespace"): argparse.Namespace,
    **{("pathlib", name): getattr(pathlib, name) for name in _PATH_CLASSES},
    # Python >= 3.13 pickles paths from pathlib._local; they map onto the same classes.
    **{("pathlib._local", name): getattr(pathlib, name) for name in _PATH_CLASSES},
    **{
        ("builtins", name): getattr(builtins, name)
        for name in ("set", "frozenset", "complex", "slice", "range", "bytearray", "object")
    },
    # Protocols 0 and 1 rebuild plain objects through this helper; it only instantiates the
    # classes above, since its arguments are resolved by this same find_class.
    ("copyreg", "_reconstructor"): copyreg._reconstructor,
}

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


def _plain(value: Any) -> Any:
    """Paths become strings and containers are walked, so the result is JSON-friendly."""
    if isinstance(value, pathlib.PurePath):
        return str(value)
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_plain(item) for item in value)
    return value


def load_options_pickle(path: str | Path) -> dict[str, Any]:
    """The options of a published run (a pickled Namespace or dict) as a plain dict."""
    path = Path(path)
    try:
        options = OptionsUnpickler(io.BytesIO(path.read_bytes())).load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, NotImplementedError) as err:
        raise ValueError(f"cannot read options pickle {path}: {err}") from None
    if isinstance(options, argparse.Namespace):
        options = vars(options)
    if not isinstance(options, dict):
        raise ValueError(f"{path} holds a {type(options).__name__}, expected an argparse.Namespace")
    return _plain(options)


def write_options_pickle(path: str | Path, options: argparse.Namespace) -> None:
    """Write a run's options as the reference does (a pickled Namespace), atomically; refuses
    anything :func:`load_options_pickle` could not read back."""
    from i2sb.atomic import atomic_path

    data = pickle.dumps(options, protocol=pickle.DEFAULT_PROTOCOL)
    try:  # fail here, not in a later reader, on a type the reader refuses
        OptionsUnpickler(io.BytesIO(data)).load()
    except pickle.UnpicklingError as err:
        raise ValueError(f"cannot write {path}: {err}") from None
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
