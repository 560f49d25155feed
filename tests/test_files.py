import os
import signal
import subprocess
import sys

import pytest
from conftest import listing

from ganmotion import files
from ganmotion.errors import GanmotionError
from ganmotion.files import atomic_folder, atomic_write, commit_folder, temporary_path


def test_atomic_write_creates_the_file_and_nothing_else(tmp_path):
    final = tmp_path / "report.json"
    with atomic_write(final) as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".report.json.partial-")
        assert tmp.suffix == ".json"  # writers that pick a format by extension still work
        tmp.write_text("{}")
        assert listing(tmp_path) == [tmp.name]  # nothing under the final name yet
    assert final.read_text() == "{}"
    assert listing(tmp_path) == ["report.json"]


def test_atomic_write_replaces_an_existing_file(tmp_path):
    final = tmp_path / "notes.txt"
    final.write_text("old")
    with atomic_write(final) as tmp:
        tmp.write_text("new")
    assert final.read_text() == "new"
    assert listing(tmp_path) == ["notes.txt"]


def test_an_exception_leaves_the_old_file_and_no_temporary(tmp_path):
    final = tmp_path / "notes.txt"
    final.write_text("old")
    with pytest.raises(RuntimeError, match="half way"):
        with atomic_write(final) as tmp:
            tmp.write_text("half")
            raise RuntimeError("half way")
    assert final.read_text() == "old"
    assert listing(tmp_path) == ["notes.txt"]


def test_an_interrupt_leaves_nothing_behind(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        with atomic_write(tmp_path / "clip.mp4") as tmp:
            tmp.write_bytes(b"\0" * 10)
            raise KeyboardInterrupt
    assert listing(tmp_path) == []


def test_data_is_synced_before_the_rename_and_the_folder_after(tmp_path, monkeypatch):
    events = []
    monkeypatch.setattr(files, "_fsync", lambda path: events.append(("fsync", path)))
    real_replace = os.replace
    monkeypatch.setattr(
        files.os, "replace", lambda a, b: (events.append(("rename", b)), real_replace(a, b))
    )
    final = tmp_path / "model.onnx"
    with atomic_write(final) as tmp:
        tmp.write_bytes(b"onnx")
    assert events == [("fsync", tmp), ("rename", final), ("fsync", tmp_path)]


def test_fsync_reaches_the_operating_system(tmp_path, monkeypatch):
    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(files.os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd)))
    with atomic_write(tmp_path / "a.bin") as tmp:
        tmp.write_bytes(b"x")
    assert len(synced) == 2  # the file, then its folder


def test_temporary_names_are_unique_in_a_process(tmp_path):
    final = tmp_path / "same.png"
    assert temporary_path(final) != temporary_path(final)
    with atomic_write(final) as first, atomic_write(final) as second:
        assert first != second
        first.write_text("1")
        second.write_text("2")
    assert final.read_text() == "1"  # the outer block commits last
    assert listing(tmp_path) == ["same.png"]


def test_a_body_that_writes_nothing_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        with atomic_write(tmp_path / "empty.txt"):
            pass
    assert listing(tmp_path) == []


def test_atomic_folder_appears_complete(tmp_path):
    final = tmp_path / "shards"
    with atomic_folder(final) as staging:
        assert staging.is_dir() and staging.parent == tmp_path
        (staging / "train-000000.tar").write_bytes(b"tar")
        (staging / "sub").mkdir()
        (staging / "sub" / "x.npy").write_bytes(b"npy")
        assert not final.exists()
    assert sorted(p.name for p in final.rglob("*")) == ["sub", "train-000000.tar", "x.npy"]
    assert listing(tmp_path) == ["shards"]


def test_atomic_folder_refuses_an_existing_folder_unless_asked(tmp_path):
    final = tmp_path / "shards"
    final.mkdir()
    (final / "precious.txt").write_text("keep")
    with pytest.raises(GanmotionError, match="already exists"):
        with atomic_folder(final):
            pytest.fail("the body must not run")
    assert listing(final) == ["precious.txt"]
    assert listing(tmp_path) == ["shards"]


def test_atomic_folder_replaces_when_asked(tmp_path):
    final = tmp_path / "shards"
    final.mkdir()
    (final / "old.txt").write_text("old")
    with atomic_folder(final, replace=True) as staging:
        (staging / "new.txt").write_text("new")
    assert listing(final) == ["new.txt"]
    assert listing(tmp_path) == ["shards"]  # the old folder is deleted, not left aside


def test_an_exception_in_a_folder_keeps_the_old_one(tmp_path):
    final = tmp_path / "shards"
    final.mkdir()
    (final / "old.txt").write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_folder(final, replace=True) as staging:
            (staging / "new.txt").write_text("new")
            raise RuntimeError("stop")
    assert listing(final) == ["old.txt"]
    assert listing(tmp_path) == ["shards"]


def test_a_failed_swap_puts_the_old_folder_back(tmp_path, monkeypatch):
    final, staging = tmp_path / "run", tmp_path / ".run.staging"
    final.mkdir()
    (final / "old.txt").write_text("old")
    staging.mkdir()
    (staging / "new.txt").write_text("new")
    real_rename = os.rename

    def rename(source, target):
        if source == staging:
            raise OSError("disk gone")
        real_rename(source, target)

    monkeypatch.setattr(files.os, "rename", rename)
    with pytest.raises(OSError, match="disk gone"):
        commit_folder(staging, final, replace=True)
    assert listing(final) == ["old.txt"]
    assert listing(tmp_path) == [".run.staging", "run"]


def test_commit_folder_syncs_every_file_and_folder(tmp_path, monkeypatch):
    synced = []
    monkeypatch.setattr(files, "_fsync", synced.append)
    staging = tmp_path / ".out.staging"
    (staging / "sub").mkdir(parents=True)
    (staging / "a.txt").write_text("a")
    (staging / "sub" / "b.txt").write_text("b")
    commit_folder(staging, tmp_path / "out", replace=False)
    expected = {staging, staging / "a.txt", staging / "sub", staging / "sub" / "b.txt"}
    assert set(synced[:-1]) == expected
    assert synced[-1] == tmp_path  # the rename itself, last


KILLED_WRITER = """
import os, signal, sys
from pathlib import Path
from ganmotion.files import atomic_folder, atomic_write
final = Path(sys.argv[1])
block = atomic_folder(final, replace=True) if sys.argv[2] == "folder" else atomic_write(final)
tmp = block.__enter__()
(tmp / "shard.tar" if sys.argv[2] == "folder" else tmp).write_text("half")
os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.mark.parametrize("kind", ["file", "folder"])
def test_a_killed_writers_temporary_is_removed_by_the_next_write(tmp_path, kind):
    final = tmp_path / ("shards" if kind == "folder" else "clip.mp4")
    killed = subprocess.run([sys.executable, "-c", KILLED_WRITER, str(final), kind])
    assert killed.returncode == -signal.SIGKILL
    (left,) = listing(tmp_path)
    assert left.startswith(f".{final.name}.partial-")
    # Not ours to touch: another host's (a shared file system) and a live process's.
    other_host = tmp_path / f".{final.name}.partial-elsewhere-1-0{final.suffix}"
    other_host.write_text("theirs")
    live = temporary_path(final)
    live.write_text("ours, in progress")
    if kind == "folder":
        with atomic_folder(final, replace=True) as staging:
            (staging / "shard.tar").write_text("whole")
    else:
        with atomic_write(final) as tmp:
            tmp.write_text("whole")
    assert sorted(listing(tmp_path)) == sorted([final.name, other_host.name, live.name])


def test_temporaries_of_other_names_are_left_alone(tmp_path):
    killed = subprocess.run([sys.executable, "-c", KILLED_WRITER, str(tmp_path / "a.png"), "file"])
    assert killed.returncode == -signal.SIGKILL
    with atomic_write(tmp_path / "b.png") as tmp:
        tmp.write_text("b")
    assert len(listing(tmp_path)) == 2 and files.remove_stale(tmp_path / "a.png")
    assert listing(tmp_path) == ["b.png"]
