"""Output files that appear whole or not at all.

Every command writes its outputs under a temporary sibling name and renames them into place
when they are complete, so a crash, an error or Ctrl-C never leaves a half-written file where
a user (or the next step of a pipeline) would take it for a finished one:

    with atomic_write(out) as tmp:        # tmp: a Path beside `out`, same suffix
        cv2.imwrite(str(tmp), image)      # any writer that takes a path
    # here `out` is the complete file; on an exception `tmp` is gone and `out` untouched

    with atomic_folder(shards, replace=True) as staging:
        ...                               # fill `staging`; it becomes `shards` when complete

The temporary name is hidden (`.name.partial-<host>-<pid>-<n>.suffix`): same folder, so the
rename is atomic (one filesystem), and same suffix, so writers that choose a format by
extension (OpenCV, PyAV) still do. Before the rename the data is flushed to disk (fsync), and
after it the folder entry too, so after a power loss the final name holds either the old or
the new content.

A process killed outright (SIGKILL, the OOM killer, a node lost) cannot remove its temporary.
The next write of the same name removes what dead processes of this host left for it (the
PID in the name is not alive): a command run again cleans up after its killed predecessor.
Temporaries of other hosts (a shared file system) are left alone: their PIDs mean nothing here.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ganmotion.errors import GanmotionError

_serial = itertools.count()  # two temporaries for one name in one process never collide
_HOST = re.sub(r"[^A-Za-z0-9]", "_", socket.gethostname()) or "host"
TAGS = ("partial", "old")  # a file being written; a folder being replaced (commit_folder)


def temporary_path(final: str | os.PathLike, tag: str = "partial") -> Path:
    """A hidden sibling of `final` to write before renaming it into place: same folder, same
    suffix, unique within this process (`.name.<tag>-<host>-<pid>-<n>.suffix`). What dead
    processes of this host left for the same `final` is removed first (`remove_stale`)."""
    final = Path(final)
    remove_stale(final)
    unique = f"{_HOST}-{os.getpid()}-{next(_serial)}"
    return final.with_name(f".{final.name}.{tag}-{unique}{final.suffix}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def remove_stale(final: str | os.PathLike) -> list[Path]:
    """Remove the temporaries of `final` (files or folders, see `temporary_path`) that
    processes of this host which are no longer alive left behind; the removed paths."""
    final = Path(final)
    folder = final.parent if str(final.parent) else Path(".")
    if not folder.is_dir():
        return []
    pattern = re.compile(
        rf"^\.{re.escape(final.name)}\.(?:{'|'.join(TAGS)})-{_HOST}-(\d+)-\d+"
        rf"{re.escape(final.suffix)}$"
    )
    removed = []
    for entry in folder.iterdir():
        match = pattern.match(entry.name)
        if match is None or _alive(int(match.group(1))):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        removed.append(entry)
    return removed


def _fsync(path: Path) -> None:
    """Flush a file's or a folder's data to the disk."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def commit_file(tmp: str | os.PathLike, final: str | os.PathLike) -> None:
    """Make the complete file `tmp` the file `final`: fsync it, rename it over `final`
    (atomically replacing an existing file), fsync the folder."""
    tmp, final = Path(tmp), Path(final)
    _fsync(tmp)
    os.replace(tmp, final)
    _fsync(final.parent)


@contextmanager
def atomic_write(final: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path to write `final` to; commit it (see `commit_file`) when the block
    exits normally. On an exception the temporary file is removed and `final`, if it existed,
    is left as it was. The caller creates the file, with whatever writer it likes."""
    final = Path(final)
    tmp = temporary_path(final)
    try:
        yield tmp
        commit_file(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)  # gone already after a commit


def commit_folder(staging: str | os.PathLike, final: str | os.PathLike, replace: bool) -> None:
    """Make the complete folder `staging` the folder `final`: fsync every file and folder in
    it, rename it to `final`, fsync the parent. An existing `final` is replaced (moved aside,
    then deleted once the new folder is in place) only with `replace`; without, it is an
    error and `staging` stays where it is."""
    staging, final = Path(staging), Path(final)
    for folder, _, names in os.walk(staging):
        for name in names:
            _fsync(Path(folder) / name)
        _fsync(Path(folder))
    if not (final.exists() or final.is_symlink()):
        os.rename(staging, final)
    elif not replace:
        raise GanmotionError(f"{final}: already exists")
    else:
        old = temporary_path(final, "old")
        os.rename(final, old)
        try:
            os.rename(staging, final)
        except BaseException:
            os.rename(old, final)
            raise
        if old.is_dir() and not old.is_symlink():
            shutil.rmtree(old)
        else:
            old.unlink()
    _fsync(final.parent)


@contextmanager
def atomic_folder(final: str | os.PathLike, replace: bool = False) -> Iterator[Path]:
    """Yield an empty temporary sibling folder to build `final` in; commit it (see
    `commit_folder`: an existing `final` is replaced only with `replace`) when the block exits
    normally. On an exception, the temporary folder is deleted and `final` left as it was."""
    final = Path(final)
    if not replace and (final.exists() or final.is_symlink()):  # before any work is done
        raise GanmotionError(f"{final}: already exists")
    staging = temporary_path(final)
    staging.mkdir()
    try:
        yield staging
        commit_folder(staging, final, replace)
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # gone already after a commit


@contextmanager
def atomic_files(folder: str | os.PathLike, *names: str) -> Iterator[dict[str, Path]]:
    """Temporary paths for the files `names` in `folder`, which appear together when the
    block exits normally (each fsynced, then renamed: a rename needs no space, so a full disk
    stops the block before any of them appears). On an exception no file of `names`
    changes, the temporaries are removed, and so is `folder` if this block created it."""
    folder = Path(folder)
    created = not folder.exists()
    folder.mkdir(exist_ok=True)
    temporaries = {name: temporary_path(folder / name) for name in names}
    try:
        yield temporaries
        for tmp in temporaries.values():
            _fsync(tmp)
        for name, tmp in temporaries.items():
            os.replace(tmp, folder / name)
        _fsync(folder)
    except BaseException:
        for tmp in temporaries.values():
            tmp.unlink(missing_ok=True)
        if created:
            shutil.rmtree(folder, ignore_errors=True)
        raise


def check_writable(path: str | os.PathLike, folder: bool = False) -> None:
    """Raise a `GanmotionError` unless `path` can be written, so that a command finds out
    before its work, not after it: as a file (written through a sibling, see `atomic_write`:
    its directory must exist and be writable, and `path` must not be a directory) or, with
    `folder`, as a directory (an existing one must be writable; a new one is made in the
    nearest existing directory above it, which must be). Permissions are asked of the
    system (`os.access`), so a read-only mount counts as read-only for root too."""
    path = Path(path)
    if folder:
        if path.exists() and not path.is_dir():
            raise GanmotionError(f"{path}: exists and is not a directory")
        place = next(p for p in (path, *path.parents) if p.exists())
    else:
        if path.is_dir():
            raise GanmotionError(f"{path}: is a directory, not a file")
        place = path.parent
    if not place.is_dir():
        why = (
            f"{place} is not a directory" if place.exists() else f"directory {place} does not exist"
        )
        raise GanmotionError(f"{path}: {why}")
    if not os.access(place, os.W_OK | os.X_OK):
        where = "this directory" if place == path else place
        raise GanmotionError(f"{path}: cannot write in {where} (read-only or no permission)")


def read_json_object(path: str | os.PathLike, what: str = "") -> dict:
    """A JSON file that holds an object (state.json, a sidecar, ...): unreadable, not text,
    not JSON or not an object is one error naming the file (`what`: what it is, for the
    message)."""
    path = Path(path)
    label = f"unreadable {what}".rstrip()
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError) as error:  # ValueError: not UTF-8, or not JSON
        raise GanmotionError(f"{path}: {label} ({error})") from None
    if not isinstance(value, dict):
        raise GanmotionError(f"{path}: expected a JSON object, got {type(value).__name__}")
    return value
