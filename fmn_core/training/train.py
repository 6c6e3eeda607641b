"""`fmn train`: a manifest in, a model folder out (DESIGN §2, paper §3-4).

1. Stage 1 trains the compact I3D on the training videos' labels, then freezes it.
2. The frozen I3D turns every training and validation video into a raw feature, through the same
   front end as inference (so the index and search see exactly these features).
3. Stage 2 trains the speech encoder, projections and fusion head (``fmn_stage``), fills the
   banks and lets validation choose T1, T2 and the combination of S1 and the memory.

Work in progress lives in ``OUT/work``: the frozen I3D and every stage-2 epoch are checkpointed
there, so a run that is stopped starts again where it was (same manifest and settings). Rows that
cannot be decoded are skipped and listed at the end; they never stop training.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
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
from fmn_core.features.audio import SpeechFrontEndConfig, front_end_config
from fmn_core.features.video import VideoFrontEndConfig, normalize_clip
from fmn_core.inference import FMNModel
from fmn_core.manifest import BACKGROUND, Manifest, ManifestRow, read_manifest
from fmn_core.models.fmn import FMNConfig, create_fmn
from fmn_core.models.i3d import create_i3d, load_kinetics_i3d, read_kinetics_state_dict
from fmn_core.models.speech import SpeechEncoderConfig
from fmn_core.splits import speaker_of
from fmn_core.training.data import Failure, decode_speech, decode_videos
from fmn_core.training.fmn_stage import (
    FMNStageConfig,
    SpeechSet,
    VideoSet,
    choose_memory,
    speech_raw,
    train_fmn_stage,
)
from fmn_core.training.video_stage import VideoStageConfig, train_video_encoder

log = logging.getLogger(__name__)
Progress = Callable[[str, int, int, str], None]  # (stage, done, total, message)

# U = 128: on the paper-protocol corpus it trains twice as fast per epoch as 256 and, in the same
# time, generalises better to new voices (docs/benchmarks.md, "How the shipped model was chosen").
MFCC_FMN = FMNConfig(speech=SpeechEncoderConfig(hidden=128, frame_stack=3))
# Whisper's frames are 20 ms, twice the MFCCs' step: two per LSTM step keep a similar pace.
WHISPER_FMN = FMNConfig(speech=SpeechEncoderConfig(hidden=128, frame_stack=2))
DEFAULT_FRONT_END = "whisper-base"  # generalises best to unheard voice families (docs/benchmarks.md)
DEFAULT_FMN = WHISPER_FMN


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides what `fmn train` produces (saved with the model)."""

    fmn: FMNConfig = DEFAULT_FMN  # the network (its video.num_classes is set from the data)
    video_frontend: VideoFrontEndConfig = field(default_factory=VideoFrontEndConfig)
    speech_frontend: SpeechFrontEndConfig = field(default_factory=lambda: front_end_config(DEFAULT_FRONT_END))
    video_stage: VideoStageConfig = field(default_factory=VideoStageConfig)
    fmn_stage: FMNStageConfig = field(default_factory=FMNStageConfig)
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def for_front_end(cls, spec: str, **changes: Any) -> TrainConfig:
        """The default configuration of a speech front end (``mfcc`` is the paper's), with ``changes``."""
        fe = front_end_config(spec)
        return cls(fmn=MFCC_FMN if fe.kind == "mfcc" else WHISPER_FMN, speech_frontend=fe, **changes)


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


def _fingerprint(*parts: object) -> str:
    """A short hash of JSON-able parts: work files carry it, so a resume never mixes runs."""
    return hashlib.blake2b(json.dumps(parts, sort_keys=True, default=str).encode(), digest_size=12).hexdigest()


# Settings that only the memory step after stage 2 reads: changing them re-chooses the memory
# from the finished stage-2 network instead of training it again.
_MEMORY_ONLY_FMN = (
    "memory_capacity", "t1", "t2", "alpha", "memory_averaging", "memory_policy", "memory_clamp_negative",
    "memory_readout", "memory_temperature", "combination", "ratio_eps", "memory_confirm",
)  # fmt: skip
_MEMORY_ONLY_STAGE = (
    "fill_pairs", "fill_by_label", "fill_positive_fraction", "t1_grid", "t2_grid", "averaging_grid",
    "soft_temperatures",
)  # fmt: skip


def _stage2_settings(fmn_cfg: FMNConfig, stage: FMNStageConfig) -> tuple[dict[str, Any], dict[str, Any]]:
    """The settings stage-2 training depends on (its work checkpoint's fingerprint)."""
    fmn = {k: v for k, v in fmn_cfg.to_dict().items() if k not in _MEMORY_ONLY_FMN}
    return fmn, {k: v for k, v in dataclasses.asdict(stage).items() if k not in _MEMORY_ONLY_STAGE}


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
    cfg: TrainConfig = TrainConfig(),
    device: torch.device | None = None,
    jobs: int | None = None,
    progress: Progress | None = None,
    resume: bool = True,
    kinetics_checkpoint: str | Path | None = None,
    video_encoder_from: str | Path | None = None,
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

    Raises:
        FmnError: a manifest without splits, or with no class that has both training videos and speech.
    """
    device = device or torch.device("cpu")
    cfg.speech_frontend.check_installed()  # a missing encoder stops here, not after stage 1
    torch.manual_seed(cfg.seed)
    out_dir = Path(out_dir)
    work = out_dir / "work"
    work.mkdir(parents=True, exist_ok=True)
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
    seconds: dict[str, float] = {}
    failures: list[Failure] = []

    def stage_progress(stage: str) -> Callable[[int, int], None] | None:
        return (lambda done, total: progress(stage, done, total, "")) if progress else None

    # -- stage 1: the video encoder -----------------------------------------------------------
    t0 = time.perf_counter()
    encoder = create_i3d(fmn_cfg.video)
    if kinetics_checkpoint is not None:
        report = load_kinetics_i3d(encoder, read_kinetics_state_dict(kinetics_checkpoint))
        log.info(
            "stage 1 starts from %s (%d tensors; new head: %s)", kinetics_checkpoint, len(report.loaded), report.skipped
        )
    # Stage 1 reads only the training and validation videos and the class list: a change to the
    # speech alone (a new voice deal, more utterances) reuses it instead of ten minutes of training.
    video_rows = [
        (r.id, str(manifest.resolve(r)), r.label, r.split) + ((r.start, r.end) if r.segment else ())
        for r in rows["video", "train"] + rows["video", "val"]
    ]
    fp_video = _fingerprint(
        video_rows, classes, fmn_cfg.video, fe, cfg.video_stage, cfg.seed, str(kinetics_checkpoint),
        str(video_encoder_from),
    )  # fmt: skip
    saved = _load_state(work / "video_encoder.safetensors", fp_video) if resume else None
    reused: list[str] = []  # stages taken from work checkpoints: their time is the one recorded there
    inherited_ids: list[str] = []  # items the borrowed I3D trained or validated on
    if video_encoder_from is not None:
        saved, inherited_ids = _borrow_video_encoder(video_encoder_from, classes, fmn_cfg, fe)
        log.info("stage 1: the frozen I3D of %s", video_encoder_from)
    if saved is not None:
        encoder.load_state_dict(saved[0])
        video_history = saved[1]["history"]
        reused.append("stage1_video")
        log.info("stage 1: reusing the trained video encoder in %s", work)
    else:
        store = dataclasses.replace(
            fe,
            frames=fe.frames * cfg.video_stage.store_factor,
            size=round(fe.size * cfg.video_stage.store_margin),
        )
        decoded = {}
        for split in ("train", "val"):
            decoded[split] = decode_videos(
                manifest, rows["video", split], store, jobs, stage_progress(f"decode {split} videos")
            )
            failures += decoded[split].failures

        def stack(split: str) -> tuple[torch.Tensor, torch.Tensor]:
            items = decoded[split].items
            clips = (
                torch.stack(items)
                if items
                else torch.zeros((0, 3, store.frames, store.size, store.size), dtype=torch.uint8)
            )
            return clips, _labels(decoded[split].rows, class_ids)

        train_v, val_v = stack("train"), stack("val")
        keep = train_v[1] >= 0
        encoder, video_history = train_video_encoder(
            encoder, (train_v[0][keep], train_v[1][keep]), (val_v[0][val_v[1] >= 0], val_v[1][val_v[1] >= 0]),
            cfg.video_stage, fe.frames, fe.size, device, cfg.seed,
            (lambda s, t, m: progress("stage 1 (I3D)", s, t, m)) if progress else None,
        )  # fmt: skip
        del decoded, train_v, val_v
        _save_state(
            work / "video_encoder.safetensors",
            encoder.state_dict(),
            {"fingerprint": fp_video, "history": video_history, "seconds": time.perf_counter() - t0},
        )
    encoder.eval().to(device)
    seconds["stage1_video"] = saved[1].get("seconds", 0.0) if saved is not None else time.perf_counter() - t0

    # -- frozen features ------------------------------------------------------------------------
    t0 = time.perf_counter()
    speech_fe = cfg.speech_frontend.pinned()  # the model records which encoder weights it was trained on
    fe_name = "MFCC" if speech_fe.kind == "mfcc" else speech_fe.kind
    video_sets: dict[str, VideoSet] = {}
    speech_sets: dict[str, SpeechSet] = {}
    for split in ("train", "val"):
        dv = decode_videos(manifest, rows["video", split], fe, jobs, stage_progress(f"features {split} videos"))
        failures += [f for f in dv.failures if f.id not in {x.id for x in failures}]
        with torch.no_grad():
            clips = [normalize_clip(c) for c in dv.items]
            feats = [
                encoder.features(torch.stack(clips[i : i + 16]).to(device)).cpu() for i in range(0, len(clips), 16)
            ]
        labels = _labels(dv.rows, class_ids)
        if (
            split != "train" and BACKGROUND in class_ids
        ):  # validation ranks speech's videos: a background video answers nothing
            labels[labels == class_ids[BACKGROUND]] = -1
        feats_t = torch.cat(feats) if feats else torch.zeros(0, fmn_cfg.video.feature_dim)
        video_sets[split] = VideoSet(feats_t[labels >= 0], labels[labels >= 0])
        speeds = cfg.fmn_stage.speed_perturb if split == "train" else ()
        ds = decode_speech(
            manifest, rows["speech", split], speech_fe, jobs, stage_progress(f"{fe_name} {split} speech"), speeds, work
        )
        failures += ds.failures
        labels = _labels(ds.rows, class_ids)
        keep = [i for i, lab in enumerate(labels.tolist()) if lab >= 0]
        items = [ds.items[i] for i in keep]
        variants = None
        if speeds:
            variants, items = items, [versions[speeds.index(1.0)] for versions in items]
        speakers = [speaker_of(ds.rows[i]) for i in keep]
        families = [voice_family(ds.rows[i]) for i in keep]
        langs = [ds.rows[i].lang or "" for i in keep]
        speech_sets[split] = SpeechSet(items, labels[keep], langs, variants, speakers, families)
    seconds["features"] = time.perf_counter() - t0

    # -- stage 2: speech encoder, heads, memory -------------------------------------------------
    t0 = time.perf_counter()
    net = create_fmn(fmn_cfg, with_video_encoder=False)
    fp_fmn = _fingerprint(fp_video, manifest_hash, *_stage2_settings(fmn_cfg, cfg.fmn_stage), cfg.speech_frontend)
    ckpt = work / "fmn_stage.safetensors"
    saved = _load_state(ckpt, fp_fmn) if resume else None
    start_epoch, history, best_state, earlier = 0, [], None, 0.0
    if saved is not None:
        tensors, meta = saved
        earlier = meta.get("seconds", 0.0)
        reused.append("stage2_fmn")
        net.load_state_dict({k[5:]: v for k, v in tensors.items() if k.startswith("last.")})
        best_state = {k[5:]: v for k, v in tensors.items() if k.startswith("best.")}
        start_epoch, history = meta["epoch"], meta["history"]
        log.info("stage 2: resuming after epoch %d", start_epoch)

    def checkpoint(epoch: int, hist: list[dict[str, float]], best: dict[str, torch.Tensor]) -> None:
        tensors = {f"last.{k}": v for k, v in net.state_dict().items()} | {f"best.{k}": v for k, v in best.items()}
        spent = earlier + time.perf_counter() - t0  # over every run that trained this stage
        _save_state(ckpt, tensors, {"fingerprint": fp_fmn, "epoch": epoch, "history": hist, "seconds": spent})

    net, fmn_history = train_fmn_stage(
        net, (video_sets["train"], speech_sets["train"]), (video_sets["val"], speech_sets["val"]), cfg.fmn_stage,
        device, cfg.seed, (lambda s, t, m: progress("stage 2 (FMN)", s, t, m)) if progress else None,
        resume=(start_epoch, history, best_state) if saved is not None else None, on_epoch_end=checkpoint,
    )  # fmt: skip
    seconds["stage2_fmn"] = earlier + time.perf_counter() - t0

    t0 = time.perf_counter()
    a_train = speech_raw(net, speech_sets["train"].feats, device)
    a_val = speech_raw(net, speech_sets["val"].feats, device)
    with torch.no_grad():  # centre the banks' cosines on the training features (see FeatureMemoryBank.center)
        for bank, feats in ((net.memory.video, video_sets["train"].feats), (net.memory.speech, a_train)):
            bank.center.copy_(feats.mean(dim=0).to(bank.center.device))
    choice, memory_state, learned = choose_memory(
        net, (video_sets["train"], a_train, speech_sets["train"].labels),
        (video_sets["val"], a_val, speech_sets["val"]), cfg.fmn_stage, cfg.seed,
        (lambda s, t, m: progress("memory settings", s, t, m)) if progress else None,
    )  # fmt: skip
    seconds["memory"] = time.perf_counter() - t0

    # -- the finished model ---------------------------------------------------------------------
    final_cfg = dataclasses.replace(
        fmn_cfg, t1=choice.t1, t2=choice.t2, combination=choice.combination,
        memory_averaging=choice.averaging, memory_readout=choice.readout, memory_temperature=choice.temperature,
    )  # fmt: skip
    final = create_fmn(final_cfg, with_video_encoder=True)
    state = {k: v for k, v in net.state_dict().items() if not k.startswith(("combiner.", "memory."))}
    state |= {f"memory.{k}": v for k, v in memory_state.items()}
    state |= {f"video_encoder.{k}": v for k, v in encoder.state_dict().items()}
    if choice.combination == "learned":
        state |= {"combiner.linear.weight": learned[:2][None].clone(), "combiner.linear.bias": learned[2:].clone()}
    final.load_state_dict(state)
    counts = {f"{m}_{s}": len(v) for (m, s), v in rows.items()} | {"classes": len(classes), "failed": len(failures)}
    memory_report = {
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
    model = FMNModel(
        final.eval(),
        final_cfg,
        fe,
        speech_fe,
        classes,
        extra={
            "training": {
                "manifest": str(manifest_path),
                "manifest_hash": manifest_hash,
                "config": cfg.to_dict(),
                "device": str(device),
                "seconds": seconds,
                "reused": reused,  # stages (partly) from work checkpoints: earlier runs' time is counted when recorded
                "counts": counts,
                "video_history": video_history,
                "fmn_history": fmn_history,
                "memory": memory_report,
                "failures": [dataclasses.asdict(f) for f in failures],
                # What the model has seen, so `fmn eval` can tell whether a test set is really held out.
                "seen": {
                    "speakers": sorted({speaker_of(r) for s in ("train", "val") for r in rows["speech", s]} - {""}),
                    "ids": sorted({r.id for rs in rows.values() for r in rs} | set(inherited_ids)),
                },
            },
        },
    )
    model.save(out_dir)
    report = TrainReport(out_dir, failures, seconds, video_history, fmn_history, memory_report, counts)
    (out_dir / "training.json").write_text(
        json.dumps(model.extra["training"], indent=2, ensure_ascii=False, default=str)
    )
    return report
