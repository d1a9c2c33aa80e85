import os
import threading

import pytest

from radar_assets.lib.store import InvalidKeyError, LocalStore, StoreError


@pytest.mark.parametrize(
    "key", ["../x", "a/../../x", "/etc/passwd", "a//b", "a/./b", "a\x00b", "", "a\\..\\b"]
)
def test_keys_that_escape_the_root_are_refused(tmp_path, key):
    store = LocalStore(tmp_path)
    with pytest.raises(InvalidKeyError):
        store.put_bytes(key, b"x")
    with pytest.raises(InvalidKeyError):
        store.exists(key)


def test_local_roundtrip_and_listing(tmp_path):
    store = LocalStore(tmp_path)
    store.put_bytes("a/b/c.bin", b"123")
    store.put_bytes("a/b/d.bin", b"4567")
    store.put_bytes("a/e.bin", b"")
    assert store.get_bytes("a/b/c.bin") == b"123"
    assert list(store.list_objects("a/b/")) == [("a/b/c.bin", 3), ("a/b/d.bin", 4)]
    assert list(store.list_keys("a/")) == ["a/b/c.bin", "a/b/d.bin", "a/e.bin"]
    assert list(store.list_keys("a/b/c")) == ["a/b/c.bin"]
    with pytest.raises(StoreError, match="no object 'nope'"):
        store.get_bytes("nope")


def test_crash_mid_write_leaves_previous_object(tmp_path, monkeypatch):
    # A fault we cannot cause for real without killing the test process: the rename fails after the
    # temporary file was written, as if the process died there.
    store = LocalStore(tmp_path)
    store.put_bytes("k", b"old")

    def boom(*_a, **_k):
        raise OSError("simulated crash before rename")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        store.put_bytes("k", b"new-but-partial")
    monkeypatch.undo()
    assert store.get_bytes("k") == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["k"]  # no temporary file left visible


def test_listing_a_prefix_that_ends_mid_name_reads_only_matching_entries(tmp_path, monkeypatch):
    store = LocalStore(tmp_path)
    wanted = ["KLOT_N0Q_2024_05_01_00_00", "KLOT_N0Q_2024_05_01_00_05", "KLOT_N0Q_2024_05_01_x/nested"]
    for key in [
        *wanted,
        "KLOT_N0Q_2024_05_02_00_00",
        "KTLX_N0Q_2024_05_01_00_00",
        "2024/05/01/KLOT/KLOT_V06",
    ]:
        store.put_bytes(key, b"x")
    walked = []
    real_walk = os.walk
    monkeypatch.setattr(os, "walk", lambda top, *a, **k: walked.append(top) or real_walk(top, *a, **k))
    got = [key for key, _size in store.list_objects("KLOT_N0Q_2024_05_01_")]
    assert got == sorted(wanted)
    # Only the matching folder is walked, never the store's root or the Level 2 tree.
    assert [os.path.relpath(top, store.root) for top in walked] == ["KLOT_N0Q_2024_05_01_x"]
    assert [k for k, _ in store.list_objects("KLOT_N0Q_2024_05_01_", start_after=wanted[0])] == sorted(
        wanted
    )[1:]


def test_delete_prunes_the_folders_it_empties_and_nothing_else(tmp_path):
    store = LocalStore(tmp_path / "store")
    store.put_bytes("a/b/c.bin", b"1")
    store.put_bytes("a/d.bin", b"2")
    store.delete("a/b/c.bin")
    assert not (store.root / "a" / "b").exists()
    assert (store.root / "a").is_dir(), "a folder that still holds an object is kept"
    store.delete("a/d.bin")
    assert not (store.root / "a").exists()
    assert store.root.is_dir(), "the store's root is never pruned"
    store.delete("a/d.bin")  # deleting what is gone is a no-op
    assert list(store.list_keys()) == []


def test_puts_survive_deletes_pruning_their_folder(tmp_path):
    """A put and a delete in the same folder, racing: each put lands although the folder it made may be
    pruned by the other thread's delete before the put writes into it."""
    store = LocalStore(tmp_path)
    errors: list[BaseException] = []
    stop = threading.Event()

    def churn():
        try:
            while not stop.is_set():
                store.put_bytes("x/y/churn.bin", b"c")
                store.delete("x/y/churn.bin")
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    thread = threading.Thread(target=churn)
    thread.start()
    try:
        for i in range(2000):
            store.put_bytes("x/y/kept.bin", b"%d" % i)
            assert store.get_bytes("x/y/kept.bin") == b"%d" % i
            store.delete("x/y/kept.bin")
    finally:
        stop.set()
        thread.join()
    assert not errors, errors
