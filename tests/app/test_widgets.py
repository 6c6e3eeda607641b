"""Widgets on their own: Chinese text, the results delegate, heatmap, memory vector, meter, workers, stall meter."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
from PySide6.QtCore import QPointF, QTimer
from PySide6.QtGui import QColor, QTextLayout
from PySide6.QtWidgets import QApplication, QLabel

from app.labels import voice_note
from app.stall_meter import StallMeter
from app.widgets.heatmap import Heatmap
from app.widgets.level_meter import LevelMeter
from app.widgets.memory_vector_chart import WINNER, MemoryVectorChart
from app.widgets.results_view import ResultsView
from app.widgets.waveform_view import wave_peaks
from app.workers import Worker, WorkerPool
from fmn_core.errors import FmnError
from fmn_core.index.results import Hit, Item


def _glyphs_found(text: str) -> bool:
    """True when every character of ``text`` has a real glyph in the font Qt picks (no empty boxes)."""
    layout = QTextLayout(text, QApplication.font())
    layout.beginLayout()
    layout.createLine()
    layout.endLayout()
    runs = layout.glyphRuns()
    return bool(runs) and all(0 not in run.glyphIndexes() for run in runs)


def test_chinese_labels_and_transcripts_have_glyphs(qapp) -> None:  # type: ignore[no-untyped-def]
    assert _glyphs_found("切洋葱 · 往碗里倒牛奶 · 在煎锅里翻炒")
    assert _glyphs_found("把洋葱切成小块")


def _hit(rank: int, label: str, text: str | None, modality: str = "speech") -> Hit:
    item = Item(f"s{rank}", Path(f"/lib/{rank}.wav"), modality, label, text, 1.5, "ok", None)
    return Hit(item, rank, 0.9 - 0.1 * rank, 0.8, 0.4, 2)


def test_results_view_paints_ranks_labels_and_score_bars(qtbot) -> None:  # type: ignore[no-untyped-def]
    view = ResultsView()
    qtbot.addWidget(view)
    view.resize(700, 400)
    hits = [_hit(1, "cut_onion", "切一个洋葱"), _hit(2, "my_own_label", None)]
    peaks = {"s1": np.abs(np.sin(np.linspace(0, 20, 200))).astype(np.float32)}
    selected = []
    view.currentHitChanged.connect(selected.append)
    view.set_hits(hits, peaks, "2 speech clips")
    view.show()
    assert selected[-1] is hits[0]  # the best is selected
    assert view.model.data(view.model.index(0)) == "1. cut the onion · 切洋葱: S 0.80"
    image = view.list.viewport().grab().toImage()
    # the S bar of the first row is drawn in its colour, about 80 % of the way along
    row = view.list.visualRect(view.model.index(0))
    blue = QColor("#3a7bd5")
    assert any(
        image.pixelColor(x, y) == blue for x in range(row.left(), row.right()) for y in range(row.top(), row.bottom())
    )


def test_heatmap_colours_cosines_and_greys_unused_slots(qtbot) -> None:  # type: ignore[no-untyped-def]
    heat = Heatmap()
    qtbot.addWidget(heat)
    heat.resize(200, 200)
    matrix = np.array([[1.0, -1.0, 0.0], [-1.0, 1.0, 0.0], [0.0, 0.0, 0.0]], np.float32)
    heat.set_matrix(matrix, np.array([True, True, False]))
    image = heat.grab().toImage()
    assert heat.cell_at(QPointF(100, 100)) == (1, 1)
    red, blue = image.pixelColor(40, 40), image.pixelColor(100, 40)  # cells (0, 0) and (0, 1)
    assert red.red() > 150 and red.blue() < 80 and blue.blue() > 150 and blue.red() < 80
    grey = image.pixelColor(160, 160)
    assert grey.red() == grey.green() == grey.blue() == 60


def test_memory_vector_marks_the_winning_slot(qtbot) -> None:  # type: ignore[no-untyped-def]
    chart = MemoryVectorChart()
    qtbot.addWidget(chart)
    chart.resize(400, 140)
    chart.set_vector(np.array([0.2, 0.9, -0.5, 0.0]), np.array([True, True, True, False]), 1, "query")
    image = chart.grab().toImage()
    assert any(image.pixelColor(x, 40) == WINNER for x in range(chart.width()))
    assert chart.slot_at(QPointF(32 + 1.5 * (chart.width() - 38) / 4, 50)) == 1


def test_level_meter_shows_dbfs_with_a_falling_peak(qtbot) -> None:  # type: ignore[no-untyped-def]
    meter = LevelMeter()
    qtbot.addWidget(meter)
    meter.set_level(0.5, 1.0)
    assert round(meter.rms_db) == -6 and meter.peak_db == 0
    meter.set_level(0.0, 0.0)
    assert meter.rms_db == -60 and -3 < meter.peak_db < 0


def test_wave_peaks_summarise_a_wave() -> None:
    wave = np.zeros(16000, np.float32)
    wave[8000] = -0.5
    peaks = wave_peaks(wave, bins=100)
    assert peaks.shape == (100,) and peaks.max() == 0.5 and np.argmax(peaks) == 50


def test_a_failing_worker_reports_instead_of_crashing(qtbot) -> None:  # type: ignore[no-untyped-def]
    pool = WorkerPool(1)

    def job(progress, cancel) -> int:  # type: ignore[no-untyped-def]
        progress(1, 2)
        raise FmnError("no such file")

    worker = Worker(job, wants=("progress", "cancel"))
    seen: list[object] = []
    worker.signals.progress.connect(lambda d, t: seen.append((d, t)))
    worker.signals.errored.connect(seen.append)
    with qtbot.waitSignal(worker.signals.finished, timeout=5000):
        pool.start(worker)
    assert seen[0] == (1, 2) and isinstance(seen[1], FmnError)
    assert pool.shutdown()


def test_stall_meter_catches_a_blocked_event_loop(qtbot) -> None:  # type: ignore[no-untyped-def]
    meter = StallMeter(interval_ms=10)
    meter.begin("work")
    QTimer.singleShot(50, lambda: time.sleep(0.15))  # a slot that blocks the loop
    qtbot.wait(400)
    meter.end()
    stats = meter.report()["work"]
    # ">= 1", not "== 1": on a busy machine the loop can also be late elsewhere, which is not what this checks
    assert stats["max_gap_ms"] >= 140 and stats["gaps_over_100ms"] >= 1 and stats["ticks"] > 10


def test_stall_meter_closes_a_phase_that_another_one_interrupts(qtbot) -> None:  # type: ignore[no-untyped-def]
    meter = StallMeter(interval_ms=1000)  # no heartbeat fires: only the phase switch can tick
    meter.begin("query")
    time.sleep(0.02)
    meter.begin("banks")  # a fast job's follow-up starts before its first heartbeat
    meter.end()
    report = meter.report()
    assert report["query"]["ticks"] == 1 and report["query"]["max_gap_ms"] >= 15
    assert report["banks"]["ticks"] == 1


def test_many_qt_calls_do_not_exhaust_none(qtbot) -> None:  # type: ignore[no-untyped-def]
    # PySide6 6.12 on Python 3.11 takes a reference from None on every void call (app/qt_compat.py):
    # without the guard, this loop aborts the interpreter.
    label = QLabel()
    qtbot.addWidget(label)
    for _ in range(600_000):  # more than None's references in this process without the guard
        label.setText("x")
    assert sys.getrefcount(None) > 1_000_000


def test_the_speech_banks_heading_says_what_it_learned_of_the_voice() -> None:
    assert voice_note(0, 0.0).startswith("your voice: confirm")
    assert voice_note(1, 0.0) == "your voice: 1 confirmed phrase, no adjustment yet"
    assert voice_note(5, 0.064) == "your voice: 5 confirmed phrases, queries adjusted by 6 %"
