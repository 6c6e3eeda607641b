"""The `fmn index`, `fmn search` and `fmn bench` commands. Thin: parse, call the library, print.

Importing this module must stay cheap (the parser is built for every `fmn` command): the heavy
modules are imported inside the commands.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fmn_core.index.export import FORMATS  # light: the standard library only

if TYPE_CHECKING:
    from fmn_core.index.indexer import Progress
    from fmn_core.index.plan import IndexReport
    from fmn_core.index.results import SearchResult
    from fmn_core.index.retriever import Retriever
    from fmn_core.index.store import Store
    from fmn_core.index.watch import LibraryWatcher
    from fmn_core.inference import FMNModel

_FAILED_SHOWN = 20  # failures listed without --report


def _progress(desc: str) -> Progress:
    """A tqdm bar on stderr that stays silent when there is nothing to do."""
    from fmn_core.progress import progress_bar as _progress_bar

    bar = _progress_bar(desc, "file")

    def update(done: int, total: int) -> None:
        if total:
            bar(done, total)

    return update


def _model_for(library: Path, model: Path | None) -> Path | None:
    """--model, else the model the library was indexed with (when it still exists), else the shipped one.

    Switching models re-encodes the library and restarts its memory banks, so a command without
    --model keeps the library's own model rather than silently replacing it.
    """
    if model is not None:
        return model
    from fmn_core.index.identity import recorded_model

    return recorded_model(library)


def _open(args: argparse.Namespace, library: Path) -> Retriever:
    from fmn_core.index.retriever import Retriever

    return Retriever.open(
        library, _model_for(library, args.model), progress=_progress("index"), device=args.device or "cpu",
        jobs=args.jobs,
    )  # fmt: skip


def _open_on_ray(args: argparse.Namespace) -> Retriever:
    """Index on Ray (joined before the index is opened: a cluster that cannot be reached leaves nothing written)."""
    from fmn_core.index.ray_index import RayIndexer, ray_cluster
    from fmn_core.index.retriever import Retriever

    def on_ray(store: Store, model: FMNModel) -> RayIndexer:
        return RayIndexer(store, model, args.ray, args.workers, device=args.device or "auto")

    with ray_cluster(args.ray, cpus=args.jobs) as cluster:
        print(f"indexing on {cluster.describe()}", file=sys.stderr, flush=True)
        return Retriever.open(
            args.library, _model_for(args.library, args.model), progress=_progress("index"), indexer=on_ray
        )


def _print_failures(report_failed: list[tuple[str, str]], show_all: bool) -> None:
    shown = report_failed if show_all else report_failed[:_FAILED_SHOWN]
    for item_id, reason in shown:
        print(f"  FAILED {item_id}: {reason}")
    if len(shown) < len(report_failed):
        print(f"  ... and {len(report_failed) - len(shown)} more (--report lists them all)")


def _cmd_index(args: argparse.Namespace) -> int:
    from fmn_core.errors import FmnError
    from fmn_core.index.watch import LibraryWatcher

    # Looked at before indexing, so a file that arrives while the first run works is indexed next.
    if args.workers is not None and args.ray is None:
        raise FmnError("--workers is the number of Ray actors: give --ray local or --ray HOST:PORT with it")
    watcher = LibraryWatcher(args.library) if args.watch else None
    retriever = _open_on_ray(args) if args.ray is not None else _open(args, args.library)
    try:
        report: IndexReport = retriever.report
        items = retriever.items()
        counts = {m: sum(1 for it in items if it.modality == m and it.status == "ok") for m in ("video", "speech")}
        failed = [(it.id, it.reason or "") for it in items if it.status == "failed"]
        where = retriever.store.folder if retriever.store is not None else "memory"
        print(f"indexed {args.library} with model {retriever.model.name}: {report.summary()}")
        print(f"  searchable: {counts['video']} videos, {counts['speech']} speech; index in {where}")
        if failed:
            print(f"  {len(failed)} file(s) could not be used:")
            _print_failures(failed, args.report)
        if args.report:
            _print_label_table(items)
        if watcher is not None:
            _watch(retriever, watcher, args)
    finally:
        retriever.close()
    return 0


def _watch(retriever: Retriever, watcher: LibraryWatcher, args: argparse.Namespace) -> None:
    """Index what is added, changed or removed until Ctrl+C (each change once it has settled)."""
    import signal
    import time

    from fmn_core.errors import FmnError

    # Ctrl+C is how watching ends: a process started with SIGINT ignored (a background job of a
    # script, or a parent that ignores it) would otherwise watch for ever.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    print(f"watching {args.library} every {args.interval:g} s (Ctrl+C stops)", flush=True)
    try:
        while True:
            time.sleep(args.interval)
            if not watcher.poll():
                continue
            try:
                report = retriever.refresh(progress=_progress("index"), jobs=args.jobs)
            except FmnError as e:  # e.g. the folder was emptied: say so and keep watching
                print(f"{time.strftime('%H:%M:%S')} cannot index the change: {e}", flush=True)
                continue
            print(f"{time.strftime('%H:%M:%S')} {report.summary()}", flush=True)
            if report.failed:
                _print_failures(report.failed, args.report)
    except KeyboardInterrupt:
        print("stopped watching")


def _print_label_table(items: list[Any]) -> None:
    rows: dict[str, list[int]] = {}
    for it in items:
        if it.status == "ok":
            rows.setdefault(it.label or "(no label)", [0, 0])[0 if it.modality == "video" else 1] += 1
    print(f"  {'label':<24} {'videos':>7} {'speech':>7}")
    for label, (v, s) in sorted(rows.items()):
        print(f"  {label:<24} {v:>7} {s:>7}")


def _cmd_search(args: argparse.Namespace) -> int:
    from fmn_core.index.export import render, result_dict
    from fmn_core.index.library import detect_modality
    from fmn_core.media.errors import MediaError

    retriever = _open(args, args.index)
    try:
        if args.item is not None:
            query = retriever.query_from_item(args.item)
        else:
            path, want = (args.audio, "speech") if args.audio is not None else (args.video, "video")
            # --audio on a video file asks for its sound track; --video on an audio file is a mistake.
            if want == "video" and detect_modality(path) != "video":
                raise MediaError(f"{path}: an audio file, but --video wants a video")
            query = retriever.query_from_file(path, modality=want)
        result = retriever.search(query, top=args.top)
        fmt = "json" if args.json else args.format
        wants_words = fmt in ("text", "json")  # a CSV or a playlist has no place for what was heard
        heard = _transcript(args) if query.modality == "speech" and args.item is None and wants_words else None
        library = retriever.store.library if retriever.store is not None else None
        if fmt == "json":
            doc = result_dict(result, library, retriever.model.name) | (heard or {})
            json.dump(doc, sys.stdout, ensure_ascii=False, indent=2)
            print()
        elif fmt != "text":
            sys.stdout.write(render(result, fmt, library, retriever.model.name))
        else:
            if heard is not None:
                t = heard["transcript"]
                print(
                    f"heard: {t['text']!r} ({t['lang']}, {t['model']})"
                    if t
                    else f"heard: ? ({heard['transcript_error']})"
                )
            _print_result(result)
    finally:
        retriever.close()
    return 0


def _transcript(args: argparse.Namespace) -> dict[str, Any] | None:
    """What Whisper heard in the query file: ``{"transcript": {...}}``, or the reason there is none.

    After the ranking, so a missing or slow decoder never holds the hits back.
    """
    if args.no_transcript:
        return None
    from fmn_core.errors import FmnError
    from fmn_core.features.audio import SpeechFrontEndConfig, prepare_wave
    from fmn_core.features.whisper import transcribe
    from fmn_core.media.audio_io import load_audio

    try:
        t = transcribe(prepare_wave(load_audio(args.audio), SpeechFrontEndConfig(), str(args.audio)))
    except FmnError as e:
        return {"transcript": None, "transcript_error": str(e)}
    return {"transcript": {"text": t.text, "lang": t.lang, "model": t.model, "cut": t.cut}}


def _print_result(result: SearchResult) -> None:
    from fmn_core.eval.calibration import describe
    from fmn_core.index.moments import span_text

    q = result.query
    print(f"query: {q.modality} {q.source} -> {len(result.hits)} hits in {result.seconds * 1000:.1f} ms")
    if result.no_good_match:
        print("no good match in this library: even the best hit is unlikely to be right (ranked anyway below)")
    print(
        f"{'rank':>4}  {'sure':>13}  {'S':>7}  {'S1':>7}  {'Max':>6}  {'slot':>4}  {'id':<28} {'label':<18} text/path"
    )
    for h in result.hits:
        slot = str(h.slot) if h.slot >= 0 else "-"
        what = h.item.text or str(h.item.path)
        if h.span is not None:
            what = f"{span_text(h.span)}  {what}"
        sure = f"{h.confidence:4.0%} {describe(h.confidence, result.threshold)}" if h.confidence is not None else "-"
        print(
            f"{h.rank:>4}  {sure:>13}  {h.s:>7.4f}  {h.s1:>7.4f}  {h.memory:>6.3f}  {slot:>4}  {h.item.id:<28} "
            f"{h.item.label or '':<18} {what}"
        )


def _cmd_bench(args: argparse.Namespace) -> int:
    from fmn_core.index.bench import BenchConfig, run_bench

    cfg = BenchConfig.quick() if args.quick else BenchConfig()
    if args.sizes:
        cfg = cfg.with_sizes(args.sizes)
    if args.ann_sizes is not None:
        cfg = dataclasses.replace(cfg, ann_sizes=tuple(args.ann_sizes))
    if args.ray_clips is not None:
        cfg = dataclasses.replace(cfg, ray_clips=args.ray_clips)
    log = lambda line: print(line, file=sys.stderr, flush=True)  # noqa: E731
    result = run_bench(cfg, model=args.model, log=log, only=args.only)
    print(result.table())
    if args.json is not None:
        result.write_json(args.json)
        print(f"wrote {args.json}")
    return 0


def _size(text: str) -> int:
    """1000, 10k, 1M -> int."""
    scale = {"k": 1_000, "m": 1_000_000}.get(text[-1:].lower(), 1)
    try:
        value = int(float(text[:-1] if scale > 1 else text) * scale)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a size such as 1000, 10k or 1M, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"a size must be positive, got {text!r}")
    return value


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text!r}")
    return value


def _add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--model",
        type=Path,
        default=None,
        help="model folder or file (default: the one the library was indexed with, else the shipped model)",
    )
    p.add_argument(
        "--device", default=None, help="cpu (default; with --ray: GPUs where the cluster has them), cuda or auto"
    )
    p.add_argument(
        "--jobs", type=int, default=None,
        help="decoding processes while indexing (default: all cores); with --ray local: the CPUs Ray gets",
    )  # fmt: skip


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add `index`, `search` and `bench` to the `fmn` sub-command parser."""
    p = sub.add_parser(
        "index",
        help="index a library folder for search (incremental)",
        description="Decode and encode every video and audio file of LIBRARY (its manifest.csv when present, "
        "else every media file under it, labelled by folder). New and changed files are encoded, unchanged "
        "ones skipped, deleted ones dropped; files that cannot be used are listed with the reason. The index "
        "lives in LIBRARY/.fmn-index, or in the user's cache folder when LIBRARY is read-only.",
    )
    p.add_argument("library", type=Path, help="the library folder")
    _add_model_args(p)
    p.add_argument("--report", action="store_true", help="list every failed file and the items per label")
    p.add_argument(
        "--watch", action="store_true", help="then keep the index up to date as files come and go (Ctrl+C stops)"
    )
    p.add_argument("--interval", type=float, default=2.0, help="seconds between looks at the folder (default 2)")
    _add_ray_args(p)
    p.set_defaults(func=_cmd_index)

    p = sub.add_parser(
        "search",
        help="rank a library's items against a query file or item",
        description="Bring the index up to date, then rank the other modality's items by the FMN score S "
        "(speech query -> videos, video query -> speech), best first.",
    )
    p.add_argument("--index", type=Path, required=True, metavar="LIBRARY", help="the library folder")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument(
        "--audio", type=Path, metavar="FILE", help="a speech recording to find videos for (of a video file: its sound)"
    )
    what.add_argument("--video", type=Path, metavar="FILE", help="a video clip to find speech for")
    what.add_argument("--item", metavar="ID", help="an item of the library to search with")
    p.add_argument("--top", type=int, default=10, help="hits to show (default 10)")
    p.add_argument(
        "--format", choices=FORMATS, default="text", help="text (default), json, csv, or an m3u playlist of the hits"
    )
    p.add_argument("--json", action="store_true", help="the same as --format json")
    p.add_argument(
        "--no-transcript", action="store_true", help="do not transcribe a speech query (Whisper's decoder, ~0.2 s)"
    )
    _add_model_args(p)
    p.set_defaults(func=_cmd_search)

    _add_bench_parser(sub)


def _add_ray_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--ray", metavar="local|HOST:PORT", default=None,
        help="decode and encode on Ray: `local` starts one on this machine's cores, HOST:PORT joins a cluster's "
        "head node (library, index and model on storage every node sees at the same path; docs/ray.md)",
    )  # fmt: skip
    p.add_argument(
        "--workers", type=_positive, default=None, metavar="N",
        help="with --ray: actors encoding at once (default: one per GPU of the cluster, else one per CPU)",
    )  # fmt: skip


def _add_bench_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "bench",
        help="measure indexing, re-opening and search speed and memory",
        description="Indexing throughput (4 s rendered clips), re-opening a 10k-item index, speech-query "
        "latency end to end at several library sizes (synthetic vectors for the large ones), indexing on a local "
        "Ray with 1 and 2 workers, peak memory. "
        "Uses the shipped model when present, else a random model of the default configuration.",
    )
    p.add_argument("--json", type=Path, metavar="PATH", help="also write the figures to this JSON file")
    p.add_argument("--sizes", type=_size, nargs="+", help="library sizes for query latency (default 1k 10k 100k 1M)")
    p.add_argument(
        "--ann-sizes", type=_size, nargs="*", metavar="N",
        help="vectors the approximate search index is measured over (default 1M; none: skip the stage); "
        "they are written to the temporary folder as float16 (5 GB at 10M)",
    )  # fmt: skip
    p.add_argument(
        "--ray-clips", type=int, default=None, metavar="N",
        help="rendered clips indexed on a local Ray with 1 and 2 workers (default 500; 0: skip the stage)",
    )  # fmt: skip
    p.add_argument(
        "--only", nargs="+", metavar="STAGE",
        help="run only these stages, e.g. `--only ray` (an unknown name lists them)",
    )  # fmt: skip
    p.add_argument("--quick", action="store_true", help="fewer clips, sizes and repeats (a smoke test)")
    p.add_argument("--model", type=Path, default=None, help="model folder or file (default: the shipped model)")
    p.set_defaults(func=_cmd_bench)
