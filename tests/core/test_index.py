"""The library index: incremental, crash-safe, failure-tolerant indexing that follows the model."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from fmn_core.cli import main
from fmn_core.index import location
from fmn_core.index.decoding import decode_item, waveform_peaks
from fmn_core.index.identity import model_identity
from fmn_core.index.indexer import Indexer
from fmn_core.index.library import scan_library
from fmn_core.index.location import INDEX_DIRNAME
from fmn_core.index.retriever import Retriever
from fmn_core.index.store import Store
from fmn_core.inference import FMNModel
from fmn_core.manifest import read_manifest
from fmn_core.models import FMNConfig, create_fmn
from fmn_core.models.speech import SpeechEncoderConfig

SMALL = FMNConfig(
    speech=SpeechEncoderConfig(hidden=32, frame_stack=3), embed_dim=32, fusion_hidden=32, memory_capacity=8
)


def save_model(folder: Path, seed: int = 0) -> Path:
    """A small random model saved like a trained one (the compact I3D, a narrow speech branch)."""
    torch.manual_seed(seed)
    FMNModel(create_fmn(SMALL).eval(), SMALL).save(folder)
    return folder


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_model(tmp_path_factory.mktemp("model"))


def folder_library(tiny_corpus: Path, out: Path, videos: int = 2, speech: int = 3) -> Path:
    """A library without a manifest, laid out as ``out/<label>/<file>``, copied from the corpus."""
    manifest = read_manifest(tiny_corpus / "manifest.csv")
    for modality, n in (("video", videos), ("speech", speech)):
        for row in manifest.of(modality)[:n]:
            dest = out / row.label / Path(row.path).name
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(manifest.resolve(row), dest)
    return out


def open_store(library: Path, model: FMNModel) -> Store:
    store = Store(library)
    store.attach_model(model_identity(model, store), model.net.memory.snapshot())
    return store


def test_scan_reads_folders_and_manifests(tiny_corpus: Path, tmp_path: Path) -> None:
    lib = folder_library(tiny_corpus, tmp_path / "lib")
    (lib / "notes.txt").write_text("not media")
    entries = scan_library(lib)
    assert sorted(e.modality for e in entries) == ["speech"] * 3 + ["video"] * 2
    assert all(e.label == e.path.parent.name and e.id == e.path.relative_to(lib).as_posix() for e in entries)
    rows = scan_library(tiny_corpus)
    manifest = read_manifest(tiny_corpus / "manifest.csv")
    assert [e.id for e in rows] == [r.id for r in manifest.rows]
    assert all(e.text for e in rows if e.modality == "speech")  # transcripts come from the manifest


def test_incremental_indexing_adds_modifies_and_deletes(tiny_corpus: Path, tmp_path: Path, model_dir: Path) -> None:
    lib = folder_library(tiny_corpus, tmp_path / "lib")
    model = FMNModel.load(model_dir)
    store = open_store(lib, model)
    first = Indexer(store, model, jobs=1).run()
    assert (first.added, first.updated, first.unchanged, first.failed) == (5, 0, 0, [])
    assert store.count("ok") == 5 and (lib / INDEX_DIRNAME / "index.sqlite").is_file()

    again = Indexer(store, model, jobs=1).run()
    assert (again.added, again.updated, again.unchanged) == (0, 0, 5)

    wavs = sorted(lib.rglob("*.wav"))
    before = store.features(wavs[0].relative_to(lib).as_posix())
    os.utime(wavs[1], ns=(wavs[1].stat().st_atime_ns, wavs[1].stat().st_mtime_ns + 10**9))  # touched, same bytes
    shutil.copy(wavs[2], wavs[0])  # new content under an old name
    os.utime(wavs[0], ns=(wavs[0].stat().st_atime_ns, wavs[0].stat().st_mtime_ns + 2 * 10**9))
    video = sorted(lib.rglob("*.mp4"))[0]
    video.unlink()
    extra = read_manifest(tiny_corpus / "manifest.csv").of("speech")[5]
    new = lib / "new_label" / "added.wav"
    new.parent.mkdir()
    shutil.copy(tiny_corpus / extra.path, new)

    changed = Indexer(store, model, jobs=1).run()
    assert (changed.added, changed.updated, changed.removed, changed.unchanged) == (1, 1, 1, 3)
    rows = store.rows()
    assert video.relative_to(lib).as_posix() not in rows
    assert rows["new_label/added.wav"].label == "new_label" and rows["new_label/added.wav"].status == "ok"
    assert rows[wavs[1].relative_to(lib).as_posix()].mtime_ns == wavs[1].stat().st_mtime_ns  # time updated in place
    after = store.features(wavs[0].relative_to(lib).as_posix())
    same_as = store.features(wavs[2].relative_to(lib).as_posix())
    assert before is not None and after is not None and same_as is not None
    assert not np.allclose(before[0], after[0]) and np.allclose(after[0], same_as[0], atol=1e-5)


def test_unusable_files_are_recorded_not_fatal(tiny_corpus: Path, tmp_path: Path, model_dir: Path) -> None:
    lib = folder_library(tiny_corpus, tmp_path / "lib", videos=1, speech=1)
    (lib / "bad").mkdir()
    (lib / "bad" / "corrupt.mp4").write_bytes(os.urandom(4096))
    (lib / "bad" / "empty.wav").write_bytes(b"")
    (lib / "bad" / "silent.wav").write_bytes(_silent_wav())
    model = FMNModel.load(model_dir)
    store = open_store(lib, model)
    report = Indexer(store, model, jobs=1).run()
    reasons = dict(report.failed)
    assert set(reasons) == {"bad/corrupt.mp4", "bad/empty.wav", "bad/silent.wav"}
    assert "empty" in reasons["bad/empty.wav"] and "silent" in reasons["bad/silent.wav"]
    assert "corrupt" in reasons["bad/corrupt.mp4"] or "cannot" in reasons["bad/corrupt.mp4"]
    assert store.count("ok") == 2 and store.count("failed") == 3
    assert Indexer(store, model, jobs=1).run().unchanged == 5  # failures are not retried until the file changes
    store.close()


def crash_on_request(job: Any) -> Any:
    """A decoder that dies like a crashing native library on files named crash* (workers import it by name)."""
    if os.path.basename(job.path).startswith("crash"):
        os._exit(1)
    return decode_item(job)


def test_a_crashing_decoder_fails_only_its_file(tiny_corpus: Path, tmp_path: Path, model_dir: Path) -> None:
    lib = folder_library(tiny_corpus, tmp_path / "lib", videos=1, speech=3)
    wav = sorted(lib.rglob("*.wav"))[0]
    shutil.copy(wav, wav.with_name("crash.wav"))
    model = FMNModel.load(model_dir)
    store = open_store(lib, model)
    report = Indexer(store, model, jobs=2, decode=crash_on_request).run()
    assert [item_id for item_id, _ in report.failed] == [wav.with_name("crash.wav").relative_to(lib).as_posix()]
    assert "crashed" in report.failed[0][1] and store.count("ok") == 4
    store.close()


def test_cancel_keeps_what_is_finished(tiny_corpus: Path, tmp_path: Path, model_dir: Path) -> None:
    lib = folder_library(tiny_corpus, tmp_path / "lib", videos=1, speech=4)
    model = FMNModel.load(model_dir)
    store = open_store(lib, model)
    done: list[int] = []
    report = Indexer(store, model, jobs=1, batch_size=2).run(
        progress=lambda n, total: done.append(n), cancel=lambda: bool(done) and done[-1] >= 2
    )
    assert report.cancelled and report.pending == 5 - store.count() and 2 <= store.count() < 5
    store.close()
    retriever = Retriever.open(lib, model_dir, jobs=1)
    assert retriever.report.added == report.pending and len(retriever.items()) == 5
    retriever.close()


def test_index_command_lists_failures(tiny_corpus: Path, tmp_path: Path, model_dir: Path, capsys) -> None:
    lib = folder_library(tiny_corpus, tmp_path / "lib", videos=1, speech=1)
    (lib / "empty.wav").write_bytes(b"")
    assert main(["index", str(lib), "--model", str(model_dir), "--report", "--jobs", "1"]) == 0
    out = capsys.readouterr().out
    assert "FAILED empty.wav" in out and "3 new" in out
    wav = next(p for p in lib.rglob("*.wav") if p.name != "empty.wav")
    assert main(["search", "--index", str(lib), "--audio", str(wav), "--json"]) == 0  # the library's own model
    result = json.loads(capsys.readouterr().out)
    assert result["model"] == model_dir.name and len(result["hits"]) == 1
    assert main(["index", str(tmp_path / "missing"), "--model", str(model_dir)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("fmn index: error:") and "\n" not in err


def _silent_wav() -> bytes:
    import io

    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, np.zeros(16000, np.float32), 16000, format="WAV", subtype="PCM_16")
    return buf.getvalue()


_KILLED_RUN = textwrap.dedent(
    """
    import os, signal, sys
    from fmn_core.index.indexer import Indexer
    from fmn_core.index.identity import model_identity
    from fmn_core.index.store import Store
    from fmn_core.inference import FMNModel

    library, model_dir, jobs, kill_at = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    model = FMNModel.load(model_dir)
    store = Store(library)
    store.attach_model(model_identity(model, store), model.net.memory.snapshot())

    def progress(done, total):
        print(done, total, flush=True)
        if done >= kill_at:
            os.kill(os.getpid(), signal.SIGKILL)  # no cleanup of any kind: as a crash or a power cut of the app

    Indexer(store, model, jobs=jobs, batch_size=2).run(progress=progress)
    """
)


def test_a_killed_run_keeps_finished_items_and_resumes(tiny_corpus: Path, tmp_path: Path, model_dir: Path) -> None:
    lib = folder_library(tiny_corpus, tmp_path / "lib", videos=2, speech=4)
    # Two decoding processes: their workers outlive the killed run unless they notice, and hold its
    # output pipes, so run() would time out.
    run = subprocess.run(
        [sys.executable, "-c", _KILLED_RUN, str(lib), str(model_dir), "2", "2"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == -signal.SIGKILL, run.stderr
    reported = int(run.stdout.split()[-2])  # the last progress line before the kill
    assert reported >= 2

    model = FMNModel.load(model_dir)
    store = Store(lib)
    assert store.integrity_check() == "ok"
    rows = store.rows()
    assert len(rows) >= reported and all(r.status == "ok" for r in rows.values())
    for item_id in rows:
        assert store.features(item_id) is not None  # every committed item is whole
    store.attach_model(model_identity(model, store), model.net.memory.snapshot())
    resumed = Indexer(store, model, jobs=1).run()
    assert resumed.unchanged == len(rows) and resumed.added == 6 - len(rows)
    assert store.count("ok") == 6


def test_another_model_invalidates_features_and_banks(tiny_corpus: Path, tmp_path: Path, model_dir: Path) -> None:
    lib = folder_library(tiny_corpus, tmp_path / "lib", videos=1, speech=2)
    first = Retriever.open(lib, model_dir, jobs=1)
    speech_id = first.items("speech")[0].id
    query = first.query_from_item(speech_id)
    first.confirm(query, first.items("video")[0].id)
    old = first.store.features(speech_id) if first.store else None
    first.close()

    other = save_model(tmp_path / "other", seed=1)
    second = Retriever.open(lib, other, jobs=1)
    assert second.report.updated == 3 and second.report.unchanged == 0
    new = second.store.features(speech_id) if second.store else None
    assert old is not None and new is not None and not np.allclose(old[0], new[0])
    assert second.update_log() == [] and not any(s.used for s in second.bank_slots("video"))
    second.close()

    third = Retriever.open(lib, other, jobs=1)  # same model again: nothing to do
    assert third.report.unchanged == 3 and third.report.encoded == 0
    third.close()


def test_read_only_library_keeps_its_index_in_the_cache(
    tiny_corpus: Path, tmp_path: Path, model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lib = folder_library(tiny_corpus, tmp_path / "lib", videos=1, speech=1)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    if os.geteuid() == 0:  # root writes through permission bits; stand in for a read-only mount
        monkeypatch.setattr(location, "_writable", lambda folder: False)
    lib.chmod(0o555)
    try:
        retriever = Retriever.open(lib, model_dir, jobs=1)
        assert retriever.store is not None
        assert retriever.store.folder.is_relative_to(tmp_path / "cache" / "fmn-studio")
        assert len(retriever.items()) == 2 and not (lib / INDEX_DIRNAME).exists()
        retriever.close()
        again = Retriever.open(lib, model_dir, jobs=1)
        assert again.report.unchanged == 2
        again.close()
    finally:
        lib.chmod(0o755)


def test_waveform_peaks_summarise_any_length() -> None:
    assert waveform_peaks(np.ones(10, np.float32)).shape == (200,)
    wave = np.zeros(16000, np.float32)
    wave[8000] = -0.5
    peaks = waveform_peaks(wave)
    assert peaks.shape == (200,) and peaks.max() == pytest.approx(0.5) and peaks.argmax() == 100
