"""Safe file primitives: YAML with the safe loader, atomic and exclusive writes, no-follow reads.

Used by the store and by the few modules that keep files of their own (config, templates)."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import stat
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, BinaryIO

import yaml

from repowire.errors import ValidationError, shown

__all__ = [
    "MAX_FILE_BYTES",
    "Identity",
    "Temp",
    "load_yaml",
    "dump_yaml",
    "atomic_write",
    "open_temp",
    "create_exclusive",
    "open_file",
    "read_tail",
    "read_text",
]

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
Temp = tuple[int, str]  # an open temp file's descriptor and path
Identity = tuple[int, ...]  # a file's inode, size, mtime and ctime in ns
MAX_FILE_BYTES = 1 << 20  # a job file larger than 1 MiB is refused before parsing
MAX_VALUES = 250_000  # what a file may expand to; 1 MiB of plain YAML holds fewer
_BaseLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_BaseLoader):  # type: ignore[misc]  # yaml's C loader is untyped
    """The safe loader, refusing a key given twice in one mapping (YAML says keys are unique;
    PyYAML would keep the last one silently)."""

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        seen: set[tuple[str, str]] = set()
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag.endswith(":merge"):
                continue  # judged by their text alone; a complex key is the schema's to refuse
            key = (key_node.tag, key_node.value)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {shown(key_node.value)} is given twice", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


_BaseDumper: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class _Dumper(_BaseDumper):  # type: ignore[misc]  # yaml's C dumper is untyped
    """Block style, times as plain ISO-8601 Z timestamps, multi-line text as literal blocks."""

    def ignore_aliases(self, data: Any) -> bool:
        return True  # a person reads these files: no &anchors and *aliases


def _represent_time(dumper: Any, value: datetime) -> Any:
    text = value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return dumper.represent_scalar("tag:yaml.org,2002:timestamp", text)


def _represent_text(dumper: Any, value: str) -> Any:
    style = "|" if "\n" in value and not value.endswith((" ", "\t")) else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(datetime, _represent_time)
_Dumper.add_representer(str, _represent_text)


def load_yaml(path: Path, text: str | None = None) -> Any:
    """Parse a YAML file with the safe loader; a ValidationError says what is wrong and where."""
    if text is None:
        text = read_text(path)
    try:
        data = yaml.load(text, Loader=_Loader)  # noqa: S506 - a safe loader, C where available
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ValidationError(f"{path}: not valid YAML{where}: {problem}") from None
    if "&" in text and not _fits(data, MAX_VALUES):  # no anchor, no alias: nothing to expand
        raise ValidationError(
            f"{path}: expands (through YAML aliases) to more than {MAX_VALUES:,} values"
        )
    return data


def _fits(data: Any, budget: int) -> bool:
    """Whether the data, with every alias expanded, holds at most `budget` values (text counts
    a value per 64 characters). Aliases share objects, so a 400-byte file can stand for
    billions of values: whatever walks it later (a check, a copy, a dump) would not return."""
    stack = [data]
    while stack:
        item = stack.pop()
        budget -= 1 + (len(item) // 64 if isinstance(item, (str, bytes)) else 0)
        if budget < 0:
            return False
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, (list, tuple, set)):
            stack.extend(item)
    return True


def open_file(path: Path, flags: int = os.O_RDONLY) -> BinaryIO:
    """Open a regular file without following a symbolic link planted at its name."""
    fd, _size = _open_regular(path, flags)
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb" if flags == os.O_RDONLY else "ab")


def _open_regular(path: Path, flags: int = os.O_RDONLY) -> tuple[int, int]:
    """A descriptor of the regular file at path (no link followed), and its size. Opened
    non-blocking, so a FIFO planted at the name cannot hang the caller before it is refused
    as not a regular file (a regular file's reads and writes never block on that flag)."""
    try:
        fd = os.open(path, flags | _NOFOLLOW | os.O_NONBLOCK, 0o644)
    except FileNotFoundError:
        raise  # callers tell "no such job" from "cannot be read"
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ValidationError(f"{path}: is a symbolic link; refusing to follow it") from None
        raise ValidationError(f"{path}: cannot be opened ({exc.strerror})") from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise ValidationError(f"{path}: is not a regular file")
    return fd, info.st_size


def read_tail(path: Path, limit: int) -> str:
    """The last `limit` bytes of a file as text ("" when there is none); links refused."""
    try:
        with open_file(path) as handle:
            handle.seek(max(0, handle.seek(0, os.SEEK_END) - limit))
            return handle.read().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return ""


def read_text(path: Path) -> str:
    """A file's text, refusing files over MAX_FILE_BYTES and anything but regular files.
    Read with plain `os.read` calls, as big as the file (records are read often)."""
    fd, size = _open_regular(path)
    try:
        parts, total = [], 0
        while total <= MAX_FILE_BYTES:  # to the end: the file may have grown since its stat
            part = os.read(fd, min(MAX_FILE_BYTES + 1 - total, max(size + 1 - total, 1 << 16)))
            if not part:
                break
            parts.append(part)
            total += len(part)
    finally:
        os.close(fd)
    data = parts[0] if len(parts) == 1 else b"".join(parts)
    if len(data) > MAX_FILE_BYTES:
        raise ValidationError(f"{path}: is larger than {MAX_FILE_BYTES // 1024} KiB")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ValidationError(f"{path}: is not UTF-8 text") from None


def dump_yaml(data: Any) -> str:
    """YAML text in block style, keys in the order given."""
    return str(yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100))


_TEMP_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
_FULL_SYNC = getattr(fcntl, "F_FULLFSYNC", None)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems cannot sync a folder; the rename is still atomic
    finally:
        os.close(fd)


def open_temp(folder: Path | str) -> Temp:
    """A new file .tmp-<random> in folder, created exclusively (never through a link)."""
    for _ in range(100):
        tmp = os.path.join(folder, f".tmp-{os.urandom(6).hex()}")
        try:
            return os.open(tmp, _TEMP_FLAGS, 0o600), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temp name in {folder}")


def _write_temp(folder: Path, data: bytes, mode: int) -> tuple[str, int]:
    """A temp file in folder holding data, durable, and its inode."""
    fd, tmp = open_temp(folder)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fchmod(fd, mode)
        if _FULL_SYNC is not None:  # macOS: plain fsync leaves data in the drive's cache
            fcntl.fcntl(fd, _FULL_SYNC)
        os.fsync(fd)
        inode = os.fstat(fd).st_ino
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    finally:
        os.close(fd)
    return tmp, inode


def _mode_for(path: Path) -> int:
    try:
        return stat.S_IMODE(os.lstat(path).st_mode)
    except FileNotFoundError:
        return 0o666 & ~_umask()


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


def _named(path: Path, exc: OSError) -> OSError:
    """The error with the file it was about, so "No space left on device" says where."""
    if exc.filename is not None:
        return exc
    return OSError(exc.errno, exc.strerror or str(exc), str(path))


def atomic_write(path: Path, text: str, temp_folder: Path | None = None) -> None:
    """Replace path with text: a temp file (in `temp_folder`, on the same file system, else
    beside the file), fsync, rename, fsync the folder."""
    try:
        _replace(path, text.encode("utf-8"), temp_folder)
    except OSError as exc:
        raise _named(path, exc) from None


def _replace(path: Path, data: bytes, temp_folder: Path | None) -> None:
    tmp, _inode = _write_temp(temp_folder or path.parent, data, _mode_for(path))
    try:
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if temp_folder is None or exc.errno != errno.EXDEV:
            raise
        _replace(path, data, None)  # the temp folder is on another file system: beside it
        return
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def create_exclusive(path: Path, text: str, temp_folder: Path | None = None) -> bool:
    """Create path with text, complete or not at all; False if it already exists. The temp
    file is written in `temp_folder` (on the same file system), else beside the file."""
    try:
        return _create(path, text.encode("utf-8"), temp_folder)
    except OSError as exc:
        raise _named(path, exc) from None


def _create(path: Path, data: bytes, temp_folder: Path | None) -> bool:
    tmp, _inode = _write_temp(temp_folder or path.parent, data, _mode_for(path))
    try:
        os.link(tmp, path)  # fails if path exists: an exclusive create of a finished file
    except FileExistsError:
        return False
    except OSError as exc:
        if temp_folder is None or exc.errno != errno.EXDEV:
            raise
        return _create(path, data, None)  # another file system: beside it
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
    _fsync_dir(path.parent)
    return True
