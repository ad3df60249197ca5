"""Checkpoint I/O for network weights: the ADM initialisation and I2SB runs (spec sections 3-4).

Everything is read with ``torch.load(weights_only=True)`` and options pickles through a
restricted unpickler: a checkpoint file cannot run code. ``latest.pt`` follows the published
layout {"net", "ema", "optimizer", "sched"} so the reference code and ours read each other's.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from i2sb.atomic import atomic_path, write_json
from i2sb.downloads import cache_dir, fetch
from i2sb.network.presets import build_i2sb_net
from i2sb.network.safe_pickle import load_options_pickle
from i2sb.network.unet import UNet, create_unet
from i2sb.network.weights_copy import copy_in_groups
from i2sb.network.wrapper import I2SBNet
from i2sb.preset_table import preset_kwargs

LOG = logging.getLogger(__name__)
CHECKPOINT_KEYS = ("net", "ema", "optimizer", "sched")
OUR_OPTION_KEYS = ("preset", "cond_x1", "interval", "t0", "T")
PUBLISHED_OPTION_KEYS = ("cond_x1", "interval", "t0", "T")


def _torch_load(path: Path, mmap: bool = False) -> Any:
    """torch.load on the CPU, weights only; ``mmap`` maps the file instead of reading it, so a
    tensor costs memory only when (and if) it is used.

    Only zip archives (torch >= 1.6) can be mapped: any other file is read as usual, so a legacy
    checkpoint still loads (whole) and a broken one gets load_error_message's diagnosis.
    """
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    archive = zipfile.is_zipfile(path)
    mmap = mmap and archive
    if archive:
        _refuse_memory_claims(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except Exception as err:  # torch raises several types; the message names the cause
        raise RuntimeError(load_error_message(path, err)) from None


# Globals torch's weights_only unpickler admits that turn a few bytes of pickle into any amount
# of memory: bytearray(10**10) allocates and zeroes 10 GB.
_MEMORY_CLAIMS = {"builtins bytearray", "__builtin__ bytearray"}
_TEXT_OPS = {"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE"}


def _refuse_memory_claims(path: Path) -> None:
    """A RuntimeError when the archive's pickle names a global of _MEMORY_CLAIMS; checkpoints of
    i2sb and NVlabs/I2SB hold tensors, dicts, lists and numbers only."""
    import pickletools

    with zipfile.ZipFile(path) as archive:
        names = [name for name in archive.namelist() if name.endswith("/data.pkl")]
        data = archive.read(names[0]) if names else b""
    recent: list[str] = []  # the last two strings pushed: STACK_GLOBAL's module and name
    try:
        for opcode, arg, _ in pickletools.genops(data):
            if opcode.name in _TEXT_OPS:
                recent = [*recent[-1:], str(arg)]
            named = {"GLOBAL": arg, "STACK_GLOBAL": " ".join(recent)}.get(opcode.name)
            if named in _MEMORY_CLAIMS:
                raise RuntimeError(
                    f"checkpoint {path} asks for {named.split()[1]}(...) while loading, which can "
                    "claim any amount of memory; a checkpoint of weights never does: refusing it"
                )
    except ValueError:
        pass  # not a readable pickle: torch.load says what is wrong with it


def load_error_message(path: Path, err: Exception) -> str:
    """One line on why ``torch.load`` refused ``path`` and what to do; never torch's advice to
    retry with ``weights_only=False`` (that would run code from the file)."""
    import pickle

    if isinstance(err, EOFError) or (path.is_file() and path.stat().st_size == 0):
        return (
            f"checkpoint {path} is empty or truncated (an interrupted write or copy): copy it "
            "again, or delete it to train from scratch"
        )
    if isinstance(err, pickle.UnpicklingError):
        detail = re.search(r"(Unsupported global: [^\n.]+|Unsupported operand [^\n.]+)", str(err))
        return (
            f"checkpoint {path} holds Python objects, not only tensors"
            f"{f' ({detail.group(1).strip()})' if detail else ''}; i2sb loads weights only and "
            "does not run code from a file: use a checkpoint written by i2sb or NVlabs/I2SB"
        )
    first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return (
        f"checkpoint {path} is not a PyTorch checkpoint of weights ({type(err).__name__}: "
        f"{first[:200]}); check the path, or copy the file again"
    )


def _load_strict(module: nn.Module, state: dict, source: Path, assign: bool = False) -> None:
    try:
        module.load_state_dict(state, strict=True, assign=assign)
    except RuntimeError as err:
        raise RuntimeError(f"{source} does not fit the network: {err}") from None


def load_adm_checkpoint(path: str | Path, cond_x1: bool = False, preset: str = "adm256") -> UNet:
    """The UNet initialised from an ADM checkpoint, after I2SB's surgery (spec section 3).

    Keeps the first 3 of ADM's 6 output channels (its learned-sigma half is dropped); with
    ``cond_x1`` the input conv takes 6 channels: the first 3 get ADM's weights, the other 3
    keep their fresh random initialisation.
    """
    path = Path(path)
    state = _torch_load(path)
    kwargs = preset_kwargs(preset)
    unet = create_unet(**{**kwargs, "use_fp16": False, "in_channels": 6 if cond_x1 else 3})
    for key in ("out.2.weight", "out.2.bias", "input_blocks.0.0.weight"):
        if key not in state:
            raise KeyError(f"{path} has no {key!r}: not an ADM UNet state_dict")
    if state["out.2.weight"].shape[0] not in (3, 6):
        raise ValueError(f"{path}: out.2.weight has {state['out.2.weight'].shape[0]} outputs")
    state["out.2.weight"] = state["out.2.weight"][:3]
    state["out.2.bias"] = state["out.2.bias"][:3]
    if cond_x1:
        fresh = unet.input_blocks[0][0].weight.detach()
        state["input_blocks.0.0.weight"] = torch.cat(
            [state["input_blocks.0.0.weight"], fresh[:, 3:]], 1
        )
    _load_strict(unet, state, path)
    return unet


def load_adm_from_downloads(
    cond_x1: bool = False, explicit: str = "", cache: str = "", preset: str = "adm256"
) -> UNet:
    """``load_adm_checkpoint`` on the file that ``i2sb.downloads`` provides (pre-placed or fetched)."""
    return load_adm_checkpoint(fetch("adm_checkpoint", explicit, cache), cond_x1, preset)


def _shadow_params(net: nn.Module, ema: dict, source: str | Path) -> list[torch.Tensor]:
    """torch_ema's ``shadow_params`` (a list in ``net.parameters()`` order), checked against ``net``."""
    shadow = ema.get("shadow_params") if isinstance(ema, dict) else None
    params = list(net.parameters())
    if not isinstance(shadow, list | tuple):
        raise KeyError(f"{source}: EMA state has no 'shadow_params' list")
    if len(shadow) != len(params):
        raise ValueError(
            f"{source}: EMA holds {len(shadow)} tensors, the network has {len(params)} parameters"
        )
    for index, (param, value) in enumerate(zip(params, shadow)):
        if value.shape != param.shape:
            raise ValueError(
                f"{source}: EMA tensor {index} has shape {tuple(value.shape)}, "
                f"the parameter has {tuple(param.shape)}"
            )
    return list(shadow)


def ema_state_dict(net: nn.Module, checkpoint: dict, source: str | Path) -> dict[str, torch.Tensor]:
    """``net``'s state_dict with the EMA tensors as its parameters and the buffers of ``net``.

    What sampling runs; built from the checkpoint's tensors without copying them, so the
    training weights (``net``'s parameters) are never read.
    """
    shadow = _shadow_params(net, checkpoint["ema"], source)
    names = [name for name, _ in net.named_parameters()]
    state = dict(checkpoint["net"])
    missing = sorted(set(names) - set(state))
    if missing:
        raise RuntimeError(f"{source} does not fit the network: 'net' lacks {missing[:3]}")
    state.update(zip(names, shadow))
    return state


def read_options_file(path: Path) -> dict[str, Any]:
    """The options in ``path``: options.json (ours) as JSON, anything else through the
    restricted unpickler; a ValueError naming the file when it is not a mapping of options."""
    if path.suffix != ".json":
        return load_options_pickle(path)
    try:
        options = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as err:
        raise ValueError(f"{path} is not valid JSON: {err}") from None
    if not isinstance(options, dict):
        raise ValueError(f"{path} holds a JSON {type(options).__name__}, expected an object")
    return options


def read_run_options(folder: Path) -> tuple[dict[str, Any], bool]:
    """(options, ours): options.json (ours, preferred) or the published options.pkl."""
    json_path, pkl_path = folder / "options.json", folder / "options.pkl"
    if json_path.is_file():
        return read_options_file(json_path), True
    if pkl_path.is_file():
        return read_options_file(pkl_path), False
    raise FileNotFoundError(f"{folder} has neither options.json nor options.pkl")


def verify_archive(path: Path) -> int:
    """Read every member of the zip archive ``path`` (latest.pt) to its end, so zipfile checks
    each one's CRC-32; returns the bytes read. A ValueError names the file and the member.

    torch.load (mmap) reads no tensor bytes and checks no CRC, so a flipped byte inside the
    weights would otherwise pass as checked and sample garbage. It costs one read of the file
    (0.41 GB/s of CPU from the page cache, benchmarks/bench_checkpoint_crc.py).
    """
    import zlib

    done = 0
    member = "<index>"
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                member = info.filename
                with archive.open(info) as handle:
                    while block := handle.read(1 << 24):
                        done += len(block)
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, OSError) as err:
        raise ValueError(
            f"{path}: member {member} of the archive is damaged ({err}); copy or download it again"
        ) from None
    return done


def _network_for(options: dict[str, Any], ours: bool, source: Path) -> I2SBNet:
    required = OUR_OPTION_KEYS if ours else PUBLISHED_OPTION_KEYS
    missing = [key for key in required if key not in options]
    if missing:
        raise KeyError(f"{source}: options lack {missing} needed to rebuild the network")
    # Published runs always used the ADM 256 UNet (the reference's Image256Net); the options.pkl
    # our runs write beside options.json names its preset.
    preset = str(options.get("preset", "adm256"))
    return build_i2sb_net(
        preset,
        int(options["interval"]),
        float(options["t0"]),
        float(options["T"]),
        cond_x1=bool(options["cond_x1"]),
    )


def checkpoint_file(path: str | Path) -> Path:
    """latest.pt of a run folder (or ``path`` itself when it is the file)."""
    path = Path(path)
    return path if path.is_file() else path / "latest.pt"


def checkpoint_fingerprint(path: str | Path, cache: str | Path | None = None) -> dict[str, Any]:
    """{"sha256", "bytes", "iteration"} of a run's latest.pt: what a sample was made from.

    The hash covers the whole file (EMA weights included), so a retrained run gives another
    fingerprint even at the same iteration. ``iteration`` is read without loading the weights
    (memory-mapped) and is None for checkpoints that do not record it (published ones).

    Hashing a published 8.8 GB file takes tens of seconds, and every sampling job of the run
    asks: the result is kept in ``cache`` (default: <$I2SB_CACHE or ~/.cache/i2sb>/fingerprints),
    never beside the file, whose folder may be a shared read-only copy. An entry is keyed by the
    file's identity (resolved path, size, inode, mtime, ctime): a retrain or a swap replaces or
    rewrites the file, which is then hashed again.
    """
    file = checkpoint_file(path)
    entry = fingerprint_cache_entry(file, cache)
    key = _identity_key(file)
    try:
        cached = json.loads(entry.read_text())
        if cached.get("identity") == key:
            return cached["fingerprint"]
    except (OSError, ValueError, AttributeError, KeyError):
        pass  # no cache yet, or an unreadable one: hash the file
    fingerprint = _hash_checkpoint(file)
    try:
        write_json(entry, {"identity": key, "fingerprint": fingerprint})
    except OSError as err:  # an unwritable cache: correct, only slower
        LOG.warning("could not keep the fingerprint of %s in %s (%s): hashed again next time",
                    file, entry, err)  # fmt: skip
    return fingerprint


def _identity_key(file: Path) -> list[Any]:
    stat = file.stat()
    return [str(file.resolve()), stat.st_size, stat.st_ino, stat.st_mtime_ns, stat.st_ctime_ns]


def fingerprint_cache_entry(file: str | Path, cache: str | Path | None = None) -> Path:
    """Where the fingerprint of ``file`` is cached: one small JSON per resolved path."""
    folder = Path(cache) if cache is not None else cache_dir() / "fingerprints"
    name = hashlib.sha256(str(Path(file).resolve()).encode()).hexdigest()[:32]
    return folder / f"{name}.json"


def _hash_checkpoint(file: Path) -> dict[str, Any]:
    saved = _torch_load(file, mmap=True)
    iteration = saved.get("iteration") if isinstance(saved, dict) else None
    digest = hashlib.sha256()
    with open(file, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return {
        "sha256": digest.hexdigest(),
        "bytes": file.stat().st_size,
        "iteration": int(iteration) if iteration is not None else None,
    }


def load_i2sb_checkpoint(
    path: str | Path,
    layout: Callable[[nn.Module], nn.Module] | None = None,
    device: str | torch.device = "cpu",
) -> tuple[I2SBNet, dict[str, Any]]:
    """(network with the EMA weights, options) from a run folder or its latest.pt.

    The folder is in the published layout (latest.pt + options.pkl) or ours (latest.pt +
    options.json, preferred when both exist). The network is in eval mode.

    Light: latest.pt is memory-mapped and only the EMA tensors (and buffers) become the
    network's; the training weights and the optimizer state are never read. Without ``layout``
    the network's tensors are the mapped ones, on the CPU (for a quick look: nothing is read
    until used). With ``layout`` (applied to the network before any weight exists, e.g.
    channels_last and the sampling dtype: i2sb.sample.restorer) every tensor is allocated once
    on ``device`` in its final dtype and layout and filled group by group from the file
    (weights_copy.py), and the mapping is gone when this returns: the weights are held once.
    """
    path = Path(path)
    folder, ckpt_path = (path.parent, path) if path.is_file() else (path, path / "latest.pt")
    options, ours = read_run_options(folder)

    def read_state() -> dict[str, torch.Tensor]:
        checkpoint = _torch_load(ckpt_path, mmap=True)
        missing = [key for key in ("net", "ema") if key not in checkpoint]
        if missing:
            raise KeyError(f"{ckpt_path} lacks {missing}; expected keys {list(CHECKPOINT_KEYS)}")
        return ema_state_dict(net, checkpoint, ckpt_path)

    # Built on the meta device and given the checkpoint's tensors: no 2 GB random init for
    # adm256 that would be overwritten at once.
    with torch.device("meta"):
        net = _network_for(options, ours, folder)
    if layout is None:
        _load_strict(net, read_state(), ckpt_path, assign=True)
        return net.eval(), options
    with warnings.catch_warnings():  # into meta tensors a copy is a no-op, as meant here
        warnings.filterwarnings("ignore", message=".*copying from a non-meta parameter")
        _load_strict(net, read_state(), ckpt_path)  # checks names and shapes, reads nothing
    net = layout(net).to_empty(device=device)
    copy_in_groups(net, read_state)
    return net.eval(), options


def save_i2sb_checkpoint(
    path: str | Path,
    net: nn.Module,
    ema_state: dict,
    optimizer_state: dict,
    sched_state: dict | None,
    extra: dict[str, Any] | None = None,
) -> None:
    """Write latest.pt in the published layout, atomically; ``extra`` adds our own keys.

    ``ema_state`` is torch_ema's ``state_dict()`` (shadow params in ``net.parameters()``
    order); it is checked against ``net`` so a mismatched EMA never reaches disk.
    """
    extra = dict(extra or {})
    clash = set(extra) & set(CHECKPOINT_KEYS)
    if clash:
        raise ValueError(f"extra keys {sorted(clash)} would overwrite the published layout")
    shadow = ema_state.get("shadow_params") if isinstance(ema_state, dict) else None
    count = sum(1 for _ in net.parameters())
    if not isinstance(shadow, list | tuple) or len(shadow) != count:
        raise ValueError(f"ema_state must hold 'shadow_params': a list of {count} tensors")
    payload = {
        "net": net.state_dict(),
        "ema": ema_state,
        "optimizer": optimizer_state,
        "sched": sched_state,
        **extra,
    }
    # Through a file object, the archive's inner folder is "archive" rather than the temporary file's name
    # (latest.tmp-<host>-<pid>): equal checkpoints are then equal files, and their sha256 (recorded by sampling) too.
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        torch.save(payload, handle)
