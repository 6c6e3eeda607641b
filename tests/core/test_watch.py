"""Following a library folder as files come, change and go: the watcher's debounce and `fmn index --watch`."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from fmn_core.index.watch import LibraryWatcher, library_signature
from fmn_core.manifest import read_manifest


def _media(corpus: Path, modality: str) -> list[Path]:
    manifest = read_manifest(corpus / "manifest.csv")
    return [manifest.resolve(r) for r in manifest.rows if r.modality == modality]


def test_a_change_is_reported_once_it_has_settled(tiny_corpus: Path, tmp_path: Path) -> None:
    library = tmp_path / "lib"
    library.mkdir()
    first, second = _media(tiny_corpus, "video")[:2]
    shutil.copy(first, library / "a.mp4")
    watcher = LibraryWatcher(library)
    assert not watcher.poll()  # nothing changed

    partial = library / "b.mp4"
    partial.write_bytes(second.read_bytes()[:100])  # a copy in progress
    assert not watcher.poll()  # first sight of a change: wait for it to settle
    partial.write_bytes(second.read_bytes())  # ... the copy goes on
    assert not watcher.poll()  # still changing
    assert watcher.poll()  # the same as last time: settled, reported once
    assert not watcher.poll()

    (library / "a.mp4").unlink()
    assert not watcher.poll() and watcher.poll()  # a removal too
    (library / "notes.txt").write_text("not media")
    assert not watcher.poll() and not watcher.poll()  # other files are not the library's business


def test_an_emptied_folder_has_an_empty_signature(tmp_path: Path) -> None:
    assert library_signature(tmp_path) == {}
    assert library_signature(tmp_path / "gone") == {}


def test_fmn_index_watch_indexes_files_as_they_arrive(tiny_corpus: Path, tmp_path: Path) -> None:
    library = tmp_path / "lib"
    library.mkdir()
    videos = _media(tiny_corpus, "video")
    shutil.copy(videos[0], library / "first.mp4")
    cmd = [sys.executable, "-m", "fmn_core.cli", "index", str(library), "--watch", "--interval", "0.2", "--jobs", "1"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    # Started with SIGINT ignored, as a background job of a script is (and as this test process may
    # be after other tests): Ctrl+C must still stop the watcher.
    ignore_sigint = lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)  # noqa: E731
    with subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env, preexec_fn=ignore_sigint
    ) as proc:
        try:
            lines: list[str] = []

            def wait_for(text: str, timeout: float = 120) -> None:
                deadline = time.monotonic() + timeout
                assert proc.stdout is not None
                while time.monotonic() < deadline:
                    line = proc.stdout.readline()
                    if not line:
                        break
                    lines.append(line)
                    if text in line:
                        return
                raise AssertionError(f"no {text!r} in {lines}")

            wait_for("watching")
            shutil.copy(videos[1], library / "second.mp4")
            wait_for("2 items, 1 new")
            (library / "first.mp4").unlink()
            wait_for("1 removed")
            # Read on, as a terminal does: a watcher whose pipe is full blocks on its next line
            # (even "stopped watching") and never exits; what it prints here is kept for the message.
            drain = threading.Thread(target=lambda: lines.extend(proc.stdout or []), daemon=True)
            drain.start()
            proc.send_signal(signal.SIGINT)
            assert proc.wait(timeout=90) == 0, lines[-20:]
            drain.join(timeout=10)
            assert any("stopped watching" in line for line in lines)
        finally:
            if proc.poll() is None:  # a failed assertion must not leave the watcher running
                proc.kill()
