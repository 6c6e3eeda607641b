"""Windows over long videos, merging a query's window scores into moments, and R@k at IoU."""

from __future__ import annotations

import pytest

from fmn_core.index.moments import Moment, chance_recall, merge_windows, recall_at_iou, temporal_iou, windows


def test_windows_cover_the_video_and_end_at_its_end() -> None:
    assert windows(10.0, 4.0, 1.0) == [(float(s), float(s + 4)) for s in range(7)]
    assert windows(10.5, 4.0, 2.0) == [(0.0, 4.0), (2.0, 6.0), (4.0, 8.0), (6.0, 10.0), (6.5, 10.5)]
    assert windows(3.0, 4.0, 1.0) == [(0.0, 3.0)]  # a clip: one item, as today
    with pytest.raises(ValueError, match="gaps"):
        windows(10.0, 2.0, 3.0)
    with pytest.raises(ValueError, match="positive"):
        windows(0.0, 4.0, 1.0)


def test_temporal_iou() -> None:
    assert temporal_iou((0, 4), (2, 6)) == pytest.approx(2 / 6)
    assert temporal_iou((0, 4), (0, 4)) == 1.0
    assert temporal_iou((0, 1), (2, 3)) == 0.0


def test_a_run_of_good_windows_becomes_one_moment_and_the_next_peak_another() -> None:
    spans = windows(12.0, 4.0, 1.0)  # 9 windows: [0,4] .. [8,12]
    #          0    1    2    3    4     5     6    7    8
    scores = [0.1, 2.0, 2.9, 3.0, 2.8, -1.0, -1.0, 1.5, 0.2]
    moments = merge_windows(spans, scores, grow=0.5)
    # windows 2-4 grow together around the peak; the windows it mostly covers are suppressed; the
    # second peak (window 7) overlaps it only a little and stands on its own; window 0 is left last
    assert moments == [Moment(2.0, 8.0, 3.0, 3), Moment(7.0, 11.0, 1.5, 7), Moment(0.0, 4.0, 0.1, 0)]
    assert merge_windows(spans, scores, grow=0.5, top=1) == moments[:1]
    assert merge_windows(spans, scores, grow=0.0)[0] == Moment(3.0, 7.0, 3.0, 3)  # no growing: the peak window alone
    with pytest.raises(ValueError, match="scores"):
        merge_windows(spans, scores[:-1])


def test_a_moment_is_centred_on_the_plateau_of_windows_that_hold_its_step() -> None:
    spans = windows(20.0, 5.0, 1.0)  # 16 windows: [0,5] .. [15,20]
    # a 3 s step at [8, 11]: the windows starting at 6, 7 and 8 hold it whole and score alike; noise
    # puts the best at the plateau's edge (start 6), whose window is off by 2 s (IoU 0.43)
    short = [0.0] * 16
    short[6], short[7], short[8], short[12] = 3.0, 2.9, 2.8, 1.0
    assert merge_windows(spans, short, top=1)[0] == Moment(6.0, 11.0, 3.0, 6)
    first, second = merge_windows(spans, short, top=2, centre=0.5)
    assert first == Moment(7.0, 12.0, 3.0, 6)  # one window long, centred on the plateau [6, 13]
    assert second == Moment(12.0, 17.0, 1.0, 12)  # the plateau's windows are used up; the next peak stands
    # a 7 s step at [4, 11]: the windows inside it (starts 4, 5, 6) make the plateau, its middle 7.5
    long = [0.0] * 16
    long[4], long[5], long[6] = 2.8, 2.9, 3.0
    assert merge_windows(spans, long, top=1, centre=0.5)[0] == Moment(5.0, 10.0, 3.0, 6)
    # a run stops at a gap (a search scores only some windows) and the moment stays inside the video
    gapped = [(0.0, 5.0), (1.0, 6.0), (9.0, 14.0)]
    assert merge_windows(gapped, [2.9, 3.0, 2.95], top=1, centre=0.5)[0] == Moment(0.5, 5.5, 3.0, 1)
    assert merge_windows(spans, [3.0] * 16, top=1, centre=0.5)[0] == Moment(7.5, 12.5, 3.0, 0)
    with pytest.raises(ValueError, match="grow or centre"):
        merge_windows(spans, short, grow=0.5, centre=0.5)


def test_recall_at_iou_within_a_video_and_across_a_library() -> None:
    truths = [[("recipe1", 10.0, 15.0)], [("recipe2", 0.0, 4.0), ("recipe2", 20.0, 24.0)]]
    predictions = [
        [("recipe1", 11.0, 15.0), ("recipe1", 30.0, 34.0)],  # IoU 0.8 first
        [("recipe1", 0.0, 4.0), ("recipe2", 1.0, 5.0)],  # the right span of the wrong video, then IoU 0.6
    ]
    assert recall_at_iou(predictions, truths, k=1, iou=0.5) == 0.5
    assert recall_at_iou(predictions, truths, k=5, iou=0.5) == 1.0
    assert recall_at_iou(predictions, truths, k=5, iou=0.7) == 0.5
    assert recall_at_iou([], [], k=1, iou=0.5) == 0.0
    assert recall_at_iou([[("recipe2", 21.0, 24.0)]], [truths[1]], k=1, iou=0.7) == 1.0  # the second time it is done


def test_chance_recall() -> None:
    assert chance_recall(10, 1, 1) == pytest.approx(0.1)
    assert chance_recall(10, 2, 5) == pytest.approx(1 - (8 * 7 * 6 * 5 * 4) / (10 * 9 * 8 * 7 * 6))
    assert chance_recall(3, 1, 5) == 1.0 and chance_recall(10, 0, 5) == 0.0
