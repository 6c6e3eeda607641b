"""`fmn train`: a manifest in, a model folder out (DESIGN §2, paper §3-4).

1. Stage 1 trains the compact I3D on the training videos' labels, then freezes it.
2. The frozen I3D turns every training and validation video into a raw feature, through the same
   front end as inference (so the index and search see exactly these features).
3. Stage 2 trains the speech encoder, projections and fusion head (``fmn_stage``), fills the
   banks and lets validation choose T1, T2 and the combination of S1 and the memory.

Work in progress lives in ``OUT/work``: the frozen I3D and every stage-2 epoch are checkpointed
there, so a run that is stopped starts again where it was (same manifest and settings). Rows that
cannot be decoded are skipped and listed at the end; they never stop training.

Under torchrun (``distributed``) every rank decodes the data and trains both stages on its share of
each batch; rank 0 alone validates, reads and writes the work checkpoints (sending what it read to
the others), chooses the memory and writes the model, so ``OUT`` need only be where rank 0 runs.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from fmn_core.errors import FmnError
from fmn_core.eval.evaluate import voice_family
from fmn_core.features.audio import SpeechFrontEndConfig
from fmn_core.features.video import VideoFrontEndConfig, normalize_clip
from fmn_core.inference import FMNModel
from fmn_core.manifest import BACKGROUND, Manifest, ManifestRow, read_manifest
from fmn_core.models.fmn import FeatureMemoryNetwork, FMNConfig, create_fmn
from fmn_core.models.i3d import VideoEncoder, create_i3d, load_kinetics_i3d, read_kinetics_state_dict
from fmn_core.splits import speaker_of
from fmn_core.training.data import Failure, decode_speech, decode_videos
from fmn_core.training.distributed import SINGLE, Dist
from fmn_core.training.fmn_batches import SpeechSet, VideoSet
from fmn_core.training.fmn_memory import MemoryChoice, choose_memory
from fmn_core.training.fmn_stage import train_fmn_stage
from fmn_core.training.fmn_validation import speech_raw
from fmn_core.training.train_config import TrainConfig, _stage2_settings
from fmn_core.training.video_stage import train_video_encoder

log = logging.getLogger(__name__)
Progress = Callable[[str, int, int, str], None]  # (stage, done, total, message)
_DEFAULT_CONFIG = TrainConfig()  # frozen: one instance can be the default of every call


@dataclass
class TrainReport:
    """What a training run did."""

    model_dir: Path
    failures: list[Failure]
    seconds: dict[str, float]
    video_history: list[dict[str, float]]
    fmn_history: list[dict[str, float]]
    memory: dict[str, Any]
    counts: dict[str, int]
    # False on the ranks other than 0 of a distributed run: rank 0 wrote the model and has the figures.
    main: bool = True


def _fingerprint(*parts: object) -> str:
    """A short hash of JSON-able parts: work files carry it, so a resume never mixes runs."""
    return hashlib.blake2b(json.dumps(parts, sort_keys=True, default=str).encode(), digest_size=12).hexdigest()


def _split_rows(manifest: Manifest, modality: str, split: str) -> list[ManifestRow]:
    return [r for r in manifest.rows if r.modality == modality and r.split == split]


def _labels(rows: list[ManifestRow], class_ids: dict[str, int]) -> torch.Tensor:
    return torch.tensor([class_ids.get(r.label, -1) for r in rows], dtype=torch.int64)


def _save_state(path: Path, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    save_file(
        {k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(tmp), metadata={"meta": json.dumps(meta)}
    )
    tmp.replace(path)  # atomic: a killed run leaves the previous checkpoint, never half of one


def _load_state(path: Path, fingerprint: str) -> tuple[dict[str, torch.Tensor], dict[str, Any]] | None:
    """A work checkpoint of this very run, or None (absent, damaged or from other data/settings)."""
    if not path.is_file():
        return None
    try:
        with safe_open(str(path), "pt") as f:
            meta = json.loads((f.metadata() or {}).get("meta", "{}"))
        if meta.get("fingerprint") != fingerprint:
            log.info("%s is from another run; starting that stage afresh", path)
            return None
        return load_file(str(path)), meta
    except (OSError, ValueError, SafetensorError) as e:  # a damaged work file only costs a redo
        log.warning("ignoring unreadable work checkpoint %s: %s", path, e)
        return None


def _borrow_video_encoder(
    source: str | Path, classes: list[str], fmn_cfg: FMNConfig, fe: VideoFrontEndConfig
) -> tuple[tuple[dict[str, torch.Tensor], dict[str, Any]], list[str]]:
    """The I3D weights, stage-1 record and seen item ids of a trained model, checked to fit.

    Raises:
        FmnError: the model's classes, I3D or video front end differ from this run's.
    """
    model = FMNModel.load(source)
    differs = [
        what
        for what, ok in (
            ("classes", model.class_names == classes),
            ("I3D settings", model.cfg.video == fmn_cfg.video),
            ("video front end", model.video_frontend == fe),
        )
        if not ok
    ]
    if differs or model.net.video_encoder is None:
        raise FmnError(f"{source}: its I3D cannot serve this run ({', '.join(differs) or 'no I3D'} differ)")
    record = model.extra.get("training", {})
    meta = {"history": record.get("video_history", []), "seconds": record.get("seconds", {}).get("stage1_video", 0.0)}
    return (model.net.video_encoder.state_dict(), meta), list(record.get("seen", {}).get("ids", []))


def train(
    manifest_path: str | Path,
    out_dir: str | Path,
    cfg: TrainConfig = _DEFAULT_CONFIG,
    device: torch.device | None = None,
    jobs: int | None = None,
    progress: Progress | None = None,
    resume: bool = True,
    kinetics_checkpoint: str | Path | None = None,
    video_encoder_from: str | Path | None = None,
    dist: Dist = SINGLE,
) -> TrainReport:
    """Train an FMN on a manifest's train split (val chooses; test is never read).

    Args:
        manifest_path: a manifest with a ``split`` column (``fmn corpus`` writes one).
        out_dir: the model folder to write (``model.safetensors``, ``training.json``, ``work/``).
        cfg: settings.
        device: where to train (CPU when None).
        jobs: decoding processes (all cores when None).
        progress: progress(stage, done, total, message).
        resume: reuse work checkpoints of the same manifest and settings.
        kinetics_checkpoint: a Kinetics I3D (pytorchvideo ``I3D_8x8_R50`` layout) that stage 1
            fine-tunes instead of starting from scratch, as the paper does; needs ``cfg.fmn.video``
            to be the full-size ``I3D_FULL``.
        video_encoder_from: a trained model whose frozen I3D replaces stage 1 (same classes and
            video settings): for a new speech front end on the same videos. What that I3D saw is
            added to the new model's record, so ``fmn eval`` flags test items it trained on.
        dist: this process's place in a torchrun run (``distributed.joined``); ``device`` is then its own.

    Raises:
        FmnError: a manifest without splits, or with no class that has both training videos and speech.
    """
    device = device or torch.device("cpu")
    cfg.speech_frontend.check_installed()  # a missing encoder stops here, not after stage 1
    torch.manual_seed(cfg.seed)
    out_dir = Path(out_dir)
    work = out_dir / "work"
    work.mkdir(parents=True, exist_ok=True)
    run = _plan(manifest_path, cfg, work, (device, dist), jobs, progress, resume)
    encoder, video_history, fp_video, inherited_ids = _stage1_video(run, kinetics_checkpoint, video_encoder_from)
    video_sets, speech_sets, speech_fe = _frozen_features(run, encoder)
    net, fmn_history = _stage2_fmn(run, fp_video, video_sets, speech_sets)
    if not dist.is_main:  # rank 0 alone chooses the memory and writes the model
        return TrainReport(out_dir, run.failures, run.seconds, [], [], {}, {}, main=False)
    choice, memory_state, learned = _memory_settings(run, net, video_sets, speech_sets)
    final, final_cfg = _final_network(run, net, encoder, choice, memory_state, learned)
    counts = {f"{m}_{s}": len(v) for (m, s), v in run.rows.items()}
    counts |= {"classes": len(run.classes), "failed": len(run.failures)}
    memory_report = _memory_report(choice, learned)
    record = _training_record(run, counts, video_history, fmn_history, memory_report, inherited_ids)
    model = FMNModel(final.eval(), final_cfg, run.fe, speech_fe, run.classes, extra={"training": record})
    model.save(out_dir)
    report = TrainReport(out_dir, run.failures, run.seconds, video_history, fmn_history, memory_report, counts)
    (out_dir / "training.json").write_text(
        json.dumps(model.extra["training"], indent=2, ensure_ascii=False, default=str)
    )
    return report


@dataclass
class _Run:
    """One `fmn train` run: what the manifest and the settings fix before any stage, and what the stages record."""

    cfg: TrainConfig
    manifest_path: str | Path
    manifest: Manifest
    manifest_hash: str
    rows: dict[tuple[str, str], list[ManifestRow]]  # (modality, split) -> rows, of train and val
    classes: list[str]
    class_ids: dict[str, int]
    fmn_cfg: FMNConfig  # cfg.fmn with the data's class count and the speech front end's feature size
    fe: VideoFrontEndConfig  # the video front end at the I3D's input frames and size
    work: Path
    device: torch.device
    jobs: int | None
    progress: Progress | None
    resume: bool
    dist: Dist
    seconds: dict[str, float] = field(default_factory=dict)
    failures: list[Failure] = field(default_factory=list)
    # Stages taken from work checkpoints: their time is the one recorded there.
    reused: list[str] = field(default_factory=list)

    def bar(self, stage: str) -> Callable[[int, int], None] | None:
        """The (done, total) progress of one stage's decoding."""
        progress = self.progress
        return (lambda done, total: progress(stage, done, total, "")) if progress else None

    @property
    def shared_jobs(self) -> int | None:
        """Decoding processes when every rank decodes at once: by default, its share of the machine's cores."""
        if self.jobs or not self.dist.active:
            return self.jobs
        return max(1, (os.cpu_count() or 1) // self.dist.local_world)

    def steps(self, stage: str) -> Callable[[int, int, str], None] | None:
        """The (step, total, message) progress of one stage's training."""
        progress = self.progress
        return (lambda s, t, m: progress(stage, s, t, m)) if progress else None


def _plan(
    manifest_path: str | Path,
    cfg: TrainConfig,
    work: Path,
    where: tuple[torch.device, Dist],
    jobs: int | None,
    progress: Progress | None,
    resume: bool,
) -> _Run:
    """Read the manifest and fix the classes and the network's settings from it (see ``train`` for what raises)."""
    device, dist = where
    progress = progress if dist.is_main else None  # rank 0 alone reports
    manifest = read_manifest(manifest_path)
    if cfg.fmn_stage.speed_perturb and 1.0 not in cfg.fmn_stage.speed_perturb:
        raise FmnError("speed_perturb must include 1.0 (the speech as recorded)")
    if any(not r.split for r in manifest.rows):
        raise FmnError(f"{manifest_path}: every row needs a split (train/val/test); `fmn corpus` writes them")
    rows = {(m, s): _split_rows(manifest, m, s) for m in ("video", "speech") for s in ("train", "val")}
    classes = sorted({r.label for r in rows["video", "train"]} & {r.label for r in rows["speech", "train"]})
    if not classes:
        raise FmnError(f"{manifest_path}: no class has both training videos and training speech")
    if any(r.label == BACKGROUND for r in rows["video", "train"]):
        # One more class for the I3D, so that it learns what tells a step from the still scene
        # around it (the same objects, no action); no speech has it (stage 2: negatives only).
        classes.append(BACKGROUND)
    class_ids = {c: i for i, c in enumerate(classes)}
    manifest_hash = hashlib.blake2b(Path(manifest_path).read_bytes(), digest_size=12).hexdigest()
    fmn_cfg = dataclasses.replace(
        cfg.fmn,
        video=dataclasses.replace(cfg.fmn.video, num_classes=len(classes)),
        speech=dataclasses.replace(cfg.fmn.speech, n_features=cfg.speech_frontend.n_features),  # F from the front end
    )
    fe = dataclasses.replace(cfg.video_frontend, frames=fmn_cfg.video.input_frames, size=fmn_cfg.video.input_size)
    return _Run(cfg, manifest_path, manifest, manifest_hash, rows, classes, class_ids, fmn_cfg, fe, work, device, jobs,
                progress, resume, dist)  # fmt: skip


def _stage1_video(
    run: _Run, kinetics_checkpoint: str | Path | None, video_encoder_from: str | Path | None
) -> tuple[VideoEncoder, list[dict[str, float]], str, list[str]]:
    """Stage 1: the I3D trained on the video labels, or taken from a work checkpoint or another model.

    Returns:
        The frozen encoder (eval mode, on the run's device), its training history, the stage's
        fingerprint (stage 2's builds on it) and the items a borrowed I3D trained or validated on.
    """
    t0 = time.perf_counter()
    cfg, fe = run.cfg, run.fe
    encoder = create_i3d(run.fmn_cfg.video)
    if kinetics_checkpoint is not None:
        loaded = load_kinetics_i3d(encoder, read_kinetics_state_dict(kinetics_checkpoint))
        log.info(
            "stage 1 starts from %s (%d tensors; new head: %s)", kinetics_checkpoint, len(loaded.loaded), loaded.skipped
        )
    # Stage 1 reads only the training and validation videos and the class list: a change to the
    # speech alone (a new voice deal, more utterances) reuses it instead of ten minutes of training.
    video_rows = [
        (r.id, str(run.manifest.resolve(r)), r.label, r.split) + ((r.start, r.end) if r.segment else ())
        for r in run.rows["video", "train"] + run.rows["video", "val"]
    ]
    fp_video = _fingerprint(
        video_rows, run.classes, run.fmn_cfg.video, fe, cfg.video_stage, cfg.seed, str(kinetics_checkpoint),
        str(video_encoder_from),
    )  # fmt: skip
    # Rank 0 reads, and the others take its weights: OUT need not be on a filesystem they see.
    saved, inherited_ids = _saved_stage1(run, fp_video, video_encoder_from) if run.dist.is_main else (None, [])
    if run.dist.broadcast_ints([saved is not None])[0]:
        if saved is not None:
            encoder.load_state_dict(saved[0])
        run.dist.broadcast_module(encoder.to(run.device))
        video_history = saved[1]["history"] if saved is not None else []
        run.reused.append("stage1_video")
        log.info("stage 1: reusing the trained video encoder in %s", run.work)
    else:
        encoder, video_history = _train_stage1(run, encoder, fp_video, t0)
    encoder.eval().to(run.device)
    run.seconds["stage1_video"] = saved[1].get("seconds", 0.0) if saved is not None else time.perf_counter() - t0
    return encoder, video_history, fp_video, inherited_ids


def _saved_stage1(
    run: _Run, fp_video: str, video_encoder_from: str | Path | None
) -> tuple[tuple[dict[str, torch.Tensor], dict[str, Any]] | None, list[str]]:
    """A trained I3D to take instead of stage 1 (another model's, or this run's work checkpoint), or None.

    Returns:
        Its (weights, stage-1 record), and the items a borrowed I3D trained or validated on.
    """
    if video_encoder_from is not None:
        borrowed, inherited_ids = _borrow_video_encoder(video_encoder_from, run.classes, run.fmn_cfg, run.fe)
        log.info("stage 1: the frozen I3D of %s", video_encoder_from)
        return borrowed, inherited_ids
    return (_load_state(run.work / "video_encoder.safetensors", fp_video) if run.resume else None), []


def _train_stage1(
    run: _Run, encoder: VideoEncoder, fp_video: str, t0: float
) -> tuple[VideoEncoder, list[dict[str, float]]]:
    """Train the I3D on the decoded training and validation videos and checkpoint it (begun at ``t0``)."""
    cfg, fe = run.cfg, run.fe
    store = dataclasses.replace(
        fe,
        frames=fe.frames * cfg.video_stage.store_factor,
        size=round(fe.size * cfg.video_stage.store_margin),
    )
    decoded = {}
    for split in ("train", "val") if run.dist.is_main else ("train",):  # rank 0 alone validates
        decoded[split] = decode_videos(
            run.manifest, run.rows["video", split], store, run.shared_jobs, run.bar(f"decode {split} videos")
        )
        run.failures += decoded[split].failures

    def stack(split: str) -> tuple[torch.Tensor, torch.Tensor]:
        part = decoded.get(split)
        items = part.items if part else []
        clips = (
            torch.stack(items)
            if items
            else torch.zeros((0, 3, store.frames, store.size, store.size), dtype=torch.uint8)
        )
        return clips, _labels(part.rows if part else [], run.class_ids)

    train_v, val_v = stack("train"), stack("val")
    keep = train_v[1] >= 0
    run.dist.check_same("training videos", [len(train_v[1]), int(train_v[1].sum())])
    encoder, video_history = train_video_encoder(
        encoder, (train_v[0][keep], train_v[1][keep]), (val_v[0][val_v[1] >= 0], val_v[1][val_v[1] >= 0]),
        cfg.video_stage, fe.frames, fe.size, run.device, cfg.seed, run.steps("stage 1 (I3D)"), run.dist,
    )  # fmt: skip
    if not run.dist.is_main:
        return encoder, video_history
    _save_state(
        run.work / "video_encoder.safetensors",
        encoder.state_dict(),
        {"fingerprint": fp_video, "history": video_history, "seconds": time.perf_counter() - t0},
    )
    return encoder, video_history


def _frozen_features(
    run: _Run, encoder: VideoEncoder
) -> tuple[dict[str, VideoSet], dict[str, SpeechSet], SpeechFrontEndConfig]:
    """The training and validation videos through the frozen I3D and their speech through the front end.

    Returns:
        The video and speech sets by split, and the speech front end pinned to its encoder's weights.
    """
    t0 = time.perf_counter()
    speech_fe = run.cfg.speech_frontend.pinned()  # the model records which encoder weights it was trained on
    video_sets: dict[str, VideoSet] = {}
    speech_sets: dict[str, SpeechSet] = {}
    for split in ("train", "val"):
        needed = split == "train" or run.dist.is_main  # rank 0 alone validates
        video_sets[split] = _video_set(run, encoder, split) if needed else _no_videos(run)
        # Rank 0 first: it caches the speech frames in OUT/work, where the others read them if they see it.
        with run.dist.main_first():
            speech_sets[split] = _speech_set(run, speech_fe, split) if needed else SpeechSet([], _labels([], {}), [])
    video, speech = video_sets["train"], speech_sets["train"]
    run.dist.check_same(
        "training data", [len(video.labels), int(video.labels.sum()), len(speech.labels), int(speech.labels.sum())]
    )
    run.seconds["features"] = time.perf_counter() - t0
    return video_sets, speech_sets, speech_fe


def _no_videos(run: _Run) -> VideoSet:
    return VideoSet(torch.zeros(0, run.fmn_cfg.video.feature_dim), _labels([], run.class_ids))


def _video_set(run: _Run, encoder: VideoEncoder, split: str) -> VideoSet:
    """The raw I3D features of one split's videos that have a class (validation: not the background)."""
    dv = decode_videos(
        run.manifest, run.rows["video", split], run.fe, run.shared_jobs, run.bar(f"features {split} videos")
    )
    run.failures += [f for f in dv.failures if f.id not in {x.id for x in run.failures}]
    with torch.no_grad():
        clips = [normalize_clip(c) for c in dv.items]
        feats = [
            encoder.features(torch.stack(clips[i : i + 16]).to(run.device)).cpu() for i in range(0, len(clips), 16)
        ]
    labels = _labels(dv.rows, run.class_ids)
    # Validation ranks speech's videos: a background video answers nothing.
    if split != "train" and BACKGROUND in run.class_ids:
        labels[labels == run.class_ids[BACKGROUND]] = -1
    feats_t = torch.cat(feats) if feats else torch.zeros(0, run.fmn_cfg.video.feature_dim)
    return VideoSet(feats_t[labels >= 0], labels[labels >= 0])


def _speech_set(run: _Run, speech_fe: SpeechFrontEndConfig, split: str) -> SpeechSet:
    """The front-end frames of one split's utterances that have a class (training's also at every speed)."""
    fe_name = "MFCC" if speech_fe.kind == "mfcc" else speech_fe.kind
    speeds = run.cfg.fmn_stage.speed_perturb if split == "train" else ()
    # Rank 0 computes the frames while the others wait for its cache (``_frozen_features``): every core is its.
    jobs = run.jobs if run.dist.is_main else run.shared_jobs
    ds = decode_speech(
        run.manifest, run.rows["speech", split], speech_fe, jobs, run.bar(f"{fe_name} {split} speech"), speeds,
        run.work,
    )  # fmt: skip
    run.failures += ds.failures
    labels = _labels(ds.rows, run.class_ids)
    keep = [i for i, lab in enumerate(labels.tolist()) if lab >= 0]
    items = [ds.items[i] for i in keep]
    variants = None
    if speeds:
        variants, items = items, [versions[speeds.index(1.0)] for versions in items]
    speakers = [speaker_of(ds.rows[i]) for i in keep]
    families = [voice_family(ds.rows[i]) for i in keep]
    langs = [ds.rows[i].lang or "" for i in keep]
    return SpeechSet(items, labels[keep], langs, variants, speakers, families)


def _stage2_fmn(
    run: _Run, fp_video: str, video_sets: dict[str, VideoSet], speech_sets: dict[str, SpeechSet]
) -> tuple[FeatureMemoryNetwork, list[dict[str, float]]]:
    """Stage 2 (speech encoder, heads), resumed from its work checkpoint of the same run; each epoch checkpointed."""
    t0 = time.perf_counter()
    cfg = run.cfg
    net = create_fmn(run.fmn_cfg, with_video_encoder=False)
    fp_fmn = _fingerprint(
        fp_video, run.manifest_hash, *_stage2_settings(run.fmn_cfg, cfg.fmn_stage), cfg.speech_frontend
    )
    ckpt = run.work / "fmn_stage.safetensors"
    saved = _load_state(ckpt, fp_fmn) if run.resume and run.dist.is_main else None
    start_epoch, earlier = 0, 0.0
    history: list[dict[str, float]] = []
    best_state: dict[str, torch.Tensor] | None = None
    if saved is not None:
        tensors, meta = saved
        earlier = meta.get("seconds", 0.0)
        net.load_state_dict({k[5:]: v for k, v in tensors.items() if k.startswith("last.")})
        best_state = {k[5:]: v for k, v in tensors.items() if k.startswith("best.")}
        start_epoch, history = meta["epoch"], meta["history"]
    # Rank 0 read the checkpoint; the others take its epoch and weights (the history and the best
    # state are rank 0's alone: it validates and chooses).
    start_epoch = run.dist.broadcast_ints([start_epoch])[0]
    if start_epoch:
        run.dist.broadcast_module(net.to(run.device))
        run.reused.append("stage2_fmn")
        log.info("stage 2: resuming after epoch %d", start_epoch)

    def checkpoint(epoch: int, hist: list[dict[str, float]], best: dict[str, torch.Tensor]) -> None:
        tensors = {f"last.{k}": v for k, v in net.state_dict().items()} | {f"best.{k}": v for k, v in best.items()}
        spent = earlier + time.perf_counter() - t0  # over every run that trained this stage
        _save_state(ckpt, tensors, {"fingerprint": fp_fmn, "epoch": epoch, "history": hist, "seconds": spent})

    net, fmn_history = train_fmn_stage(
        net, (video_sets["train"], speech_sets["train"]), (video_sets["val"], speech_sets["val"]), cfg.fmn_stage,
        run.device, cfg.seed, run.steps("stage 2 (FMN)"),
        resume=(start_epoch, history, best_state) if start_epoch else None, on_epoch_end=checkpoint, dist=run.dist,
    )  # fmt: skip
    run.seconds["stage2_fmn"] = earlier + time.perf_counter() - t0
    return net, fmn_history


def _memory_settings(
    run: _Run, net: FeatureMemoryNetwork, video_sets: dict[str, VideoSet], speech_sets: dict[str, SpeechSet]
) -> tuple[MemoryChoice, dict[str, torch.Tensor], torch.Tensor]:
    """Centre the banks on the training features, then let validation choose how they are filled and read."""
    t0 = time.perf_counter()
    a_train = speech_raw(net, speech_sets["train"].feats, run.device)
    a_val = speech_raw(net, speech_sets["val"].feats, run.device)
    with torch.no_grad():  # centre the banks' cosines on the training features (see FeatureMemoryBank.center)
        for bank, feats in ((net.memory.video, video_sets["train"].feats), (net.memory.speech, a_train)):
            bank.center.copy_(feats.mean(dim=0).to(bank.center.device))
    chosen = choose_memory(
        net, (video_sets["train"], a_train, speech_sets["train"].labels),
        (video_sets["val"], a_val, speech_sets["val"]), run.cfg.fmn_stage, run.cfg.seed, run.steps("memory settings"),
    )  # fmt: skip
    run.seconds["memory"] = time.perf_counter() - t0
    return chosen


def _final_network(
    run: _Run,
    net: FeatureMemoryNetwork,
    encoder: VideoEncoder,
    choice: MemoryChoice,
    memory_state: dict[str, torch.Tensor],
    learned: torch.Tensor,
) -> tuple[FeatureMemoryNetwork, FMNConfig]:
    """The shipped network and its settings: stage 2's weights, the chosen memory and combination, the I3D."""
    final_cfg = dataclasses.replace(
        run.fmn_cfg, t1=choice.t1, t2=choice.t2, combination=choice.combination,
        memory_averaging=choice.averaging, memory_readout=choice.readout, memory_temperature=choice.temperature,
    )  # fmt: skip
    final = create_fmn(final_cfg, with_video_encoder=True)
    state = {k: v for k, v in net.state_dict().items() if not k.startswith(("combiner.", "memory."))}
    # The banks' persistent buffers only: a snapshot also holds the user's voice, never a model's.
    state |= {f"memory.{k}": memory_state[k] for k in final.memory.state_dict()}
    state |= {f"video_encoder.{k}": v for k, v in encoder.state_dict().items()}
    if choice.combination == "learned":
        state |= {"combiner.linear.weight": learned[:2][None].clone(), "combiner.linear.bias": learned[2:].clone()}
    final.load_state_dict(state)
    return final, final_cfg


def _memory_report(choice: MemoryChoice, learned: torch.Tensor) -> dict[str, Any]:
    """The memory choice as ``training.json`` records it, with every candidate."""
    return {
        "choice": {
            "combination": choice.combination,
            "t1": choice.t1,
            "t2": choice.t2,
            "averaging": choice.averaging,
            "readout": choice.readout,
            "temperature": choice.temperature,
            "val_value": choice.value,
        },  # fmt: skip
        "candidates": choice.table,
        "learned_combiner": learned.tolist(),  # kept for the ablations whatever was chosen
    }


def _training_record(
    run: _Run,
    counts: dict[str, int],
    video_history: list[dict[str, float]],
    fmn_history: list[dict[str, float]],
    memory_report: dict[str, Any],
    inherited_ids: list[str],
) -> dict[str, Any]:
    """What the model folder records of its training (``training.json``, and the model's ``extra``)."""
    rows = run.rows
    return {
        "manifest": str(run.manifest_path),
        "manifest_hash": run.manifest_hash,
        "config": run.cfg.to_dict(),
        "device": str(run.device),
        "seconds": run.seconds,
        "reused": run.reused,  # stages (partly) from work checkpoints: earlier runs' time is counted when recorded
        "counts": counts,
        "video_history": video_history,
        "fmn_history": fmn_history,
        "memory": memory_report,
        "failures": [dataclasses.asdict(f) for f in run.failures],
        # What the model has seen, so `fmn eval` can tell whether a test set is really held out.
        "seen": {
            "speakers": sorted({speaker_of(r) for s in ("train", "val") for r in rows["speech", s]} - {""}),
            "ids": sorted({r.id for rs in rows.values() for r in rs} | set(inherited_ids)),
        },
    }
