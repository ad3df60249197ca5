"""Readable job logs and progress: what a workflow job did, in its own log file.

``rule_log(snakemake)`` wraps a rule script: everything the job prints (Python and C level, warnings,
library output) goes to the rule's ``log:`` file, which starts with the command and the resolved
settings and ends with the time taken or, on failure, the traceback. The log keeps every attempt
(retries, reruns), each from a dated header line; a shell rule gets the same with
``python -m i2sb.joblog keep {log} RULE`` before its ``>> {log}``. ``progress`` draws a tqdm bar on
a terminal and writes a log line every tenth of the way (with rate and ETA) anywhere else, so a log
file shows progress without thousands of carriage returns. No torch import: the scripts stay light.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import platform
import shutil
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

LOG = logging.getLogger("i2sb")
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def on_terminal() -> bool:
    """Whether stderr is a terminal (bars) rather than a file or pipe (log lines)."""
    return sys.stderr.isatty()


class _AboveBars(logging.StreamHandler):
    """Writes each record with ``tqdm.write``, so log lines print above a running bar, not through it."""

    def emit(self, record: logging.LogRecord) -> None:
        from tqdm import tqdm

        try:
            tqdm.write(self.format(record), file=self.stream)
        except Exception:  # logging's own contract: a broken handler must not stop the program
            self.handleError(record)


def console_logging(level: int = logging.INFO) -> None:
    """Send i2sb's log lines (and Python warnings) to stderr, once per process."""
    logging.captureWarnings(True)
    root = logging.getLogger()
    if not root.handlers:
        handler = _AboveBars(sys.stderr) if on_terminal() else logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(FORMAT))
        root.addHandler(handler)
        root.setLevel(level)


def plain(value: Any) -> Any:
    """Dataclasses, paths and Snakemake's named lists as JSON-ready values."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if hasattr(value, "_names") and hasattr(value, "items"):  # snakemake.io.Namedlist
        named = dict(value.items())
        return plain(named) if named else [plain(v) for v in value]
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


def describe_job(smk: Any) -> str:
    """The head of a rule's log: rule, command, inputs, outputs and the resolved settings."""
    job = {
        "rule": smk.rule,
        "command": [sys.executable, *sys.argv],
        "wildcards": plain(smk.wildcards),
        "input": plain(smk.input),
        "output": plain(smk.output),
        "threads": smk.threads,
        "params (resolved settings)": plain(smk.params),
    }
    return json.dumps(job, indent=2, default=str)


@contextlib.contextmanager
def _output_into(path: Path) -> Iterator[Any]:
    """Send stdout and stderr to ``path``: Python's streams and file descriptors 1 and 2 (so C-level
    and subprocess output land there too); yields the open file."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(path, "a", buffering=1) as handle:
        os.dup2(handle.fileno(), 1)
        os.dup2(handle.fileno(), 2)
        try:
            with contextlib.redirect_stdout(handle), contextlib.redirect_stderr(handle):
                yield handle
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def attempts_file(log: Path) -> Path:
    """Where every attempt of a job's log is kept: ``.<log name>.attempts`` beside the log."""
    return log.with_name(f".{log.name}.attempts")


def keep_attempts(log: str | Path, rule: str) -> Path:
    """Make ``log`` show every attempt of its job, then start this one with a dated header line.

    Snakemake deletes a job's log files before each run, retries included, so appending alone
    kept only the last attempt. The attempts live in :func:`attempts_file`, and ``log`` is a hard
    link to it (a copy where the file system has no hard links): Snakemake's delete removes a
    name, never the history. Returns ``log``.
    """
    log = Path(log)
    history = attempts_file(log)
    log.parent.mkdir(parents=True, exist_ok=True)
    if not (log.exists() and history.exists() and os.path.samefile(log, history)):
        with open(history, "ab") as kept:
            if log.exists():  # not our link: an older i2sb's log, or a copy made below
                known, text = history.read_bytes(), log.read_bytes()
                kept.write(text[len(known) :] if text.startswith(known) else text)
        log.unlink(missing_ok=True)
        try:
            os.link(history, log)
        except OSError:
            shutil.copyfile(history, log)
    stamp = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    with open(log, "a") as handle:
        handle.write(f"===== {stamp}: rule {rule} starts (host {platform.node()}, "
                     f"pid {os.getpid()}) =====\n")  # fmt: skip
    return log


@contextlib.contextmanager
def rule_log(smk: Any) -> Iterator[logging.Logger]:
    """Run a rule script's body with all its output appended to ``smk.log[0]``; log a failure's traceback.

    The log holds every attempt (retries and reruns), each from a dated header line on
    (:func:`keep_attempts`), so an earlier failure's traceback stays above the retry's story.
    """
    if not smk.log:
        raise ValueError(f"rule {smk.rule} declares no log: file for its script to write")
    path = keep_attempts(smk.log[0], smk.rule)
    root = logging.getLogger()
    level = root.level
    started = time.perf_counter()
    try:
        with _output_into(path) as handle:
            handler = logging.StreamHandler(handle)
            handler.setFormatter(logging.Formatter(FORMAT))
            root.addHandler(handler)
            root.setLevel(logging.INFO)
            # re-install: someone may have replaced warnings.showwarning
            logging.captureWarnings(False)
            logging.captureWarnings(True)
            try:
                LOG.info("job %s", describe_job(smk))
                yield LOG
                LOG.info("rule %s done in %.1f s", smk.rule, time.perf_counter() - started)
            except BaseException:
                LOG.exception(
                    "rule %s failed after %.1f s", smk.rule, time.perf_counter() - started
                )
                raise
            finally:
                logging.captureWarnings(False)
                root.removeHandler(handler)
                root.setLevel(level)
    finally:
        _save_attempts(path)


def _save_attempts(log: Path) -> None:
    """Where the log is a copy (no hard links), copy this attempt into the attempts file too."""
    history = attempts_file(log)
    if log.exists() and not (history.exists() and os.path.samefile(log, history)):
        shutil.copyfile(log, history)


def format_seconds(seconds: float) -> str:
    """``3725.4`` -> ``1:02:05``."""
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


class LineProgress:
    """Progress as log lines: one per tenth of ``total`` (and the last), with rate and ETA."""

    def __init__(self, total: int, desc: str, unit: str = "it", initial: int = 0,
                 logger: logging.Logger = LOG):  # fmt: skip
        self.total, self.desc, self.unit, self.logger = total, desc, unit, logger
        self.initial = self.count = initial
        self.started, self._next = time.perf_counter(), 0
        self.logger.info("%s: %d/%d %s", desc, initial, total, unit)
        self._advance_mark()

    def _advance_mark(self) -> None:
        step = max(1, -(-self.total // 10))
        self._next = min(self.total, (self.count // step + 1) * step)

    def update(self, n: int = 1) -> None:
        self.count += n
        if self.count >= self._next or self.count >= self.total:
            elapsed = time.perf_counter() - self.started
            rate = (self.count - self.initial) / elapsed if elapsed > 0 else float("inf")
            eta = (self.total - self.count) / rate if rate > 0 else 0.0
            self.logger.info(
                "%s: %d/%d %s (%.0f%%), %.2f %s/s, elapsed %s, ETA %s",
                self.desc, self.count, self.total, self.unit, 100 * self.count / max(self.total, 1),
                rate, self.unit, format_seconds(elapsed), format_seconds(eta),
            )  # fmt: skip
            self._advance_mark()

    def set_postfix(self, **values: Any) -> None:
        pass

    def close(self) -> None:
        pass


class _Silent(LineProgress):
    def __init__(self) -> None:
        pass

    def update(self, n: int = 1) -> None:
        pass


def progress_bar(
    total: int,
    desc: str,
    unit: str = "it",
    initial: int = 0,
    enabled: bool = True,
    lines: bool = True,
):
    """A tqdm bar on a terminal, else (``lines``) log lines; ``update``, ``set_postfix``, ``close``."""
    if enabled and on_terminal():
        from tqdm.auto import tqdm

        return tqdm(total=total, initial=initial, desc=desc, unit=unit, file=sys.stderr)
    if enabled and lines:
        return LineProgress(total, desc, unit, initial)
    return _Silent()


def progress(items: Iterable, desc: str, total: int | None = None, unit: str = "it") -> Iterator:
    """Iterate ``items`` showing progress (:func:`progress_bar`)."""
    items = list(items) if total is None else items
    bar = progress_bar(len(items) if total is None else total, desc, unit)
    try:
        for item in items:
            yield item
            bar.update(1)
    finally:
        bar.close()


def main(argv: list[str]) -> int:
    """``python -m i2sb.joblog keep LOG RULE``: what a shell rule runs before ``>> LOG``."""
    if len(argv) != 3 or argv[0] != "keep":
        print("usage: python -m i2sb.joblog keep LOG RULE", file=sys.stderr)
        return 2
    keep_attempts(argv[1], argv[2])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
