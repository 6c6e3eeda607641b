"""An R@k chart of an evaluation (one panel per direction, one line per method), drawn with OpenCV.

OpenCV is already a dependency for video decoding; a plotting library would be one more install
for a single figure.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from fmn_core.eval.evaluate import EvalReport

_PANEL_W, _PANEL_H, _MARGIN = 520, 360, 60
_COLORS = [  # BGR, distinguishable and print-safe
    (180, 119, 31), (14, 127, 255), (44, 160, 44), (40, 39, 214), (189, 103, 148),
    (75, 86, 140), (194, 119, 227), (0, 0, 0), (34, 189, 188), (207, 190, 23),
    (0, 128, 128), (128, 0, 0), (0, 0, 128), (0, 200, 120),
]  # fmt: skip


def _text(img: np.ndarray, text: str, org: tuple[int, int], scale: float = 0.45, color=(40, 40, 40)) -> None:  # type: ignore[no-untyped-def]
    cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, color, 1, cv2.LINE_AA)


def recall_plot(
    report: EvalReport, out: str | os.PathLike[str], scope: str = "all", methods: list[str] | None = None
) -> Path:
    """Write a PNG of R@k against k for each method and direction.

    Args:
        report: an evaluation.
        out: the PNG to write.
        scope: 'all' or a language.
        methods: which methods to draw (default: all in the report, in its order).
    """
    methods = methods or [m for m in report.results if scope in report.results[m]]
    directions = list(next(iter(report.results.values()))[scope])
    legend_h = 22 * len(methods) + 20
    img = np.full(
        (_PANEL_H + 2 * _MARGIN + legend_h, len(directions) * (_PANEL_W + _MARGIN) + _MARGIN, 3), 255, np.uint8
    )
    for p, direction in enumerate(directions):
        x0, y0 = _MARGIN + p * (_PANEL_W + _MARGIN), _MARGIN
        ks = sorted(report.results[methods[0]][scope][direction].recall_at)
        kmax = max(ks)

        def pt(k: int, r: float, x0: int = x0, y0: int = y0, kmax: int = kmax) -> tuple[int, int]:
            return int(x0 + _PANEL_W * k / kmax), int(y0 + _PANEL_H * (1 - r))

        cv2.rectangle(img, (x0, y0), (x0 + _PANEL_W, y0 + _PANEL_H), (90, 90, 90), 1)
        for r in np.linspace(0, 1, 6):
            y = pt(0, r)[1]
            cv2.line(img, (x0, y), (x0 + _PANEL_W, y), (225, 225, 225), 1)
            _text(img, f"{r:.1f}", (x0 - 32, y + 4))
        for k in ks:
            x = pt(k, 0)[0]
            cv2.line(img, (x, y0 + _PANEL_H), (x, y0 + _PANEL_H + 5), (90, 90, 90), 1)
            _text(img, str(k), (x - 6, y0 + _PANEL_H + 20))
        _text(img, f"{direction} ({scope})", (x0, y0 - 14), 0.6)
        _text(img, "k", (x0 + _PANEL_W // 2, y0 + _PANEL_H + 42))
        _text(img, "R@k", (x0 - 50, y0 - 14))
        for m, method in enumerate(methods):
            metrics = report.results[method][scope][direction]
            points = [pt(0, 0)] + [pt(k, metrics.recall_at[k]) for k in ks]
            color = _COLORS[m % len(_COLORS)]
            dashed = method.startswith("random")
            for a, b in zip(points[1:], points[2:], strict=False):
                cv2.line(img, a, b, (160, 160, 160) if dashed else color, 1 if dashed else 2, cv2.LINE_AA)
            for q in points[1:]:
                cv2.circle(img, q, 3, (160, 160, 160) if dashed else color, -1, cv2.LINE_AA)
    y = _PANEL_H + 2 * _MARGIN
    for m, method in enumerate(methods):
        color = (160, 160, 160) if method.startswith("random") else _COLORS[m % len(_COLORS)]
        cv2.line(img, (_MARGIN, y + 22 * m), (_MARGIN + 30, y + 22 * m), color, 3)
        _text(img, method, (_MARGIN + 40, y + 22 * m + 5))
    out = Path(out)
    if not cv2.imwrite(str(out), img):
        raise OSError(f"could not write {out}")
    return out
