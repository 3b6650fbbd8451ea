"""atomic_write (model files, FANN data, the command line's outputs): what it replaces, the
modes it leaves, the temporary files it never leaves behind, and the paths its errors name."""
import errno
import os
import signal
import stat
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest

import fastbp
from fastbp.io import _TEMP_NAME, _host_tag, atomic_write


def temps_in(directory):
    return [n for n in os.listdir(directory) if _TEMP_NAME.fullmatch(n)]


def write(path, data=b"new"):
    with atomic_write(path) as f:
        f.write(data)


# --- what gets replaced ----------------------------------------------------------------------
def test_a_symlink_is_written_through_and_kept(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "links").mkdir()
    real = tmp_path / "real" / "model.npz"
    real.write_bytes(b"old")
    link = tmp_path / "links" / "model.npz"
    link.symlink_to(os.path.join("..", "real", "model.npz"))
    write(link)
    assert link.is_symlink() and os.readlink(link) == os.path.join("..", "real", "model.npz")
    assert real.read_bytes() == b"new"
    assert temps_in(tmp_path / "real") == [] and sorted(os.listdir(tmp_path / "links")) == \
        ["model.npz"]


def test_a_dangling_symlink_creates_its_target(tmp_path):
    link = tmp_path / "link"
    link.symlink_to("target")
    write(link)
    assert link.is_symlink() and (tmp_path / "target").read_bytes() == b"new"


def test_a_fifo_is_written_directly(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()), daemon=True)
    reader.start()
    net = fastbp.Network([3, 4, 2], seed=0)
    net.save(fifo)
    reader.join(timeout=10)
    assert not reader.is_alive(), "the reader never saw the data: the FIFO was replaced"
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    assert sorted(os.listdir(tmp_path)) == ["pipe"]
    copy = tmp_path / "copy.npz"
    copy.write_bytes(received[0])
    np.testing.assert_array_equal(fastbp.load(copy).params, net.params)


# --- modes -----------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", [0o644, 0o640, 0o600, 0o444])
def test_an_existing_files_mode_is_kept(tmp_path, mode):
    path = tmp_path / "model.npz"
    path.write_bytes(b"old")
    os.chmod(path, mode)
    write(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == mode and path.read_bytes() == b"new"


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs root")
def test_root_keeps_an_existing_files_owner(tmp_path):
    path = tmp_path / "model.npz"
    path.write_bytes(b"old")
    os.chown(path, 4321, 4322)
    write(path)
    st = os.stat(path)
    assert (st.st_uid, st.st_gid) == (4321, 4322)


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_a_new_file_gets_the_umasks_mode(tmp_path, umask):
    previous = os.umask(umask)
    try:
        write(tmp_path / "model.npz")
    finally:
        os.umask(previous)
    assert stat.S_IMODE(os.stat(tmp_path / "model.npz").st_mode) == 0o666 & ~umask


# --- temporary files -------------------------------------------------------------------------
HOLD_SAVE = textwrap.dedent("""
    import sys, time
    from fastbp.io import atomic_write
    with atomic_write(sys.argv[1]) as f:
        f.write(b"partial")
        f.flush()
        print("writing", flush=True)
        time.sleep(60)
""")


def start_holding_save(path):
    """A process stopped in the middle of a save to ``path`` (its temp file exists)."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD_SAVE, str(path)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline() == "writing\n"
    assert len(temps_in(path.parent)) == 1
    return proc


def test_temp_files_of_killed_writers_are_swept_by_the_next_save(tmp_path):
    target = tmp_path / "model.npz"
    proc = start_holding_save(target)
    proc.kill()
    proc.wait()
    (stale,) = temps_in(tmp_path)
    assert _TEMP_NAME.fullmatch(stale)["pid"] == str(proc.pid)
    alive = f".fastbp-save.{_host_tag()}.{os.getpid()}.abcdef.tmp"  # a running writer's
    elsewhere = f".fastbp-save.other-host.{proc.pid}.abcdef.tmp"  # maybe running, elsewhere
    for name in (alive, elsewhere, "unrelated.tmp"):
        (tmp_path / name).write_bytes(b"")
    write(tmp_path / "another.npz")
    assert sorted(os.listdir(tmp_path)) == sorted([alive, elsewhere, "unrelated.tmp",
                                                   "another.npz"])


def test_sigterm_during_a_save_leaves_no_temp_file(tmp_path):
    target = tmp_path / "model.npz"
    target.write_bytes(b"old")
    proc = start_holding_save(target)
    proc.terminate()
    assert proc.wait(timeout=10) == -signal.SIGTERM  # still dies of SIGTERM
    assert os.listdir(tmp_path) == ["model.npz"] and target.read_bytes() == b"old"


SAVE_LOOP = textwrap.dedent("""
    import sys
    import fastbp
    net = fastbp.Network([30, 40, 20], seed=0)
    net.save(sys.argv[1])
    print("saving", flush=True)
    while True:
        net.save(sys.argv[1])
""")


def test_sigterm_to_a_process_saving_in_a_loop_leaves_no_temp_file(tmp_path):
    target = tmp_path / "model.npz"
    for delay in (0.0, 0.05, 0.2):
        proc = subprocess.Popen([sys.executable, "-c", SAVE_LOOP, str(target)],
                                stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline() == "saving\n"
        time.sleep(delay)
        proc.terminate()
        assert proc.wait(timeout=10) == -signal.SIGTERM
        assert os.listdir(tmp_path) == ["model.npz"]
        fastbp.load(target)  # and the file is complete


def test_the_sigterm_handler_is_only_there_during_a_save(tmp_path):
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    seen = []
    with atomic_write(tmp_path / "a") as f:
        seen.append(signal.getsignal(signal.SIGTERM))
        f.write(b"x")
    assert seen[0] is not signal.SIG_DFL
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL

    def own(signum, frame):
        pass
    previous = signal.signal(signal.SIGTERM, own)
    try:
        with atomic_write(tmp_path / "b") as f:  # an application's handler is left alone
            assert signal.getsignal(signal.SIGTERM) is own
            f.write(b"x")
        assert signal.getsignal(signal.SIGTERM) is own
    finally:
        signal.signal(signal.SIGTERM, previous)
    done = []
    saver = threading.Thread(target=lambda: done.append(write(tmp_path / "c")))
    saver.start()  # outside the main thread no handler can be installed: save all the same
    saver.join()
    assert done == [None] and (tmp_path / "c").read_bytes() == b"new"


# --- errors ----------------------------------------------------------------------------------
def test_errors_name_the_target_not_the_temp_file(tmp_path, monkeypatch):
    missing = tmp_path / "no-such-dir" / "model.npz"
    with pytest.raises(FileNotFoundError) as info:
        write(missing)
    assert info.value.filename == str(missing)

    target = tmp_path / "model.npz"
    with pytest.raises(OSError) as info, atomic_write(target):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))  # as a full disk's write does
    assert info.value.errno == errno.ENOSPC and info.value.filename == str(target)

    def failing_replace(src, dst):
        raise OSError(errno.EXDEV, os.strerror(errno.EXDEV), src, dst)
    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="model.npz") as info:
        write(target)
    assert info.value.filename == str(target) and ".fastbp-save" not in str(info.value)
    assert os.listdir(tmp_path) == []


def test_errors_about_other_files_are_left_alone(tmp_path):
    with pytest.raises(FileNotFoundError) as info, atomic_write(tmp_path / "out") as f:
        f.write(b"x")
        open(tmp_path / "input.csv")
    assert info.value.filename == str(tmp_path / "input.csv")
    assert os.listdir(tmp_path) == []


def test_a_directory_target_is_refused_by_name(tmp_path):
    with pytest.raises(IsADirectoryError) as info:
        write(tmp_path)
    assert info.value.filename == str(tmp_path)
