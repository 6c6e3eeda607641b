"""Checkpoints: a safetensors round trip keeps scores and banks; pickles are refused unread; files
that do not fit their config or version say what differs."""

from __future__ import annotations

import dataclasses
import io
import json
import pickletools
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from fmn_core.errors import FmnError
from fmn_core.models import (
    CheckpointError,
    FMNConfig,
    I3DConfig,
    SpeechEncoderConfig,
    create_fmn,
    load_checkpoint,
    read_metadata,
    save_checkpoint,
)
from fmn_core.models.checkpoint import FORMAT_VERSION

TINY = FMNConfig(
    video=I3DConfig(stem_dim_out=8, input_frames=4, input_size=32, num_classes=3),
    speech=SpeechEncoderConfig(n_features=12, hidden=8),
    embed_dim=16,
    fusion_hidden=16,
    memory_capacity=4,
    t1=0.4,
    t2=0.7,
    combination="learned",
)


@pytest.fixture(autouse=True)
def _seeded_one_thread() -> Iterator[None]:
    """Tiny tensors: a second thread only adds synchronisation (and stalls on a busy machine)."""
    torch.manual_seed(0)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _trained_looking(cfg: FMNConfig = TINY, with_video_encoder: bool = True) -> torch.nn.Module:
    model = create_fmn(cfg, with_video_encoder=with_video_encoder).eval()
    with torch.no_grad():
        model.combiner.linear.weight.copy_(torch.tensor([[0.8, 2.0]]))  # memory matters in the score
    model.confirm_match(torch.rand(3, 256), torch.randn(3, 32))
    return model


def test_round_trip_gives_identical_scores_and_banks(tmp_path: Path) -> None:
    model = _trained_looking()
    extra = {"class_names": ["cut_onion", "stir_pan", "pour_milk"], "val": {"r@1": 0.25}, "note": "切洋葱"}
    path = save_checkpoint(tmp_path / "model.safetensors", model, TINY, extra)
    loaded, cfg, loaded_extra = load_checkpoint(path)
    assert cfg == TINY and loaded_extra == extra and not loaded.training
    for name, buf in model.memory.named_buffers():
        assert torch.equal(buf, dict(loaded.memory.named_buffers())[name]), name
    v, a = torch.rand(5, 256), torch.randn(4, 32)
    before, after = model.score_pairwise(v, a), loaded.score_pairwise(v, a)
    assert torch.equal(before.s, after.s) and torch.equal(before.slot, after.slot)
    clips = torch.randn(2, 3, 4, 32, 32)
    assert torch.equal(model.video_features(clips), loaded.video_features(clips))
    metadata = read_metadata(path)
    assert json.loads(metadata["thresholds"]) == {"t1": 0.4, "t2": 0.7, "alpha": 0.1, "combination": "learned"}


def test_a_deferred_video_encoder_is_built_on_first_use_and_saved(tmp_path: Path) -> None:
    model = _trained_looking()
    path = save_checkpoint(tmp_path / "model.safetensors", model, TINY)
    deferred, _, _ = load_checkpoint(path, defer_video=True)
    assert deferred.video_encoder is None and deferred.has_video_encoder  # no I3D built yet
    clips = torch.randn(2, 3, 4, 32, 32)
    assert torch.equal(model.video_features(clips), deferred.video_features(clips))
    assert deferred.video_encoder is not None and not deferred.video_encoder.training
    again, _, _ = load_checkpoint(save_checkpoint(tmp_path / "again.safetensors", deferred, TINY), defer_video=True)
    resaved, _, _ = load_checkpoint(save_checkpoint(tmp_path / "resaved.safetensors", again, TINY))
    assert torch.equal(model.video_features(clips), resaved.video_features(clips))  # saving builds it first


def test_a_speech_search_process_never_imports_the_video_libraries(tmp_path: Path) -> None:
    import subprocess
    import sys

    path = save_checkpoint(tmp_path / "model.safetensors", _trained_looking(), TINY)
    code = (
        "import sys, torch\n"
        "from fmn_core.inference import FMNModel\n"
        f"m = FMNModel.load({str(path)!r}, defer_video=True)\n"
        "m.net.score_pairwise(torch.rand(2, 256), torch.randn(3, 32))\n"
        "print(sorted(k for k in sys.modules if k.split('.')[0] in ('pytorchvideo', 'torchvision')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_a_model_without_video_encoder_round_trips(tmp_path: Path) -> None:
    model = _trained_looking(with_video_encoder=False)
    loaded, _, _ = load_checkpoint(save_checkpoint(tmp_path / "m.safetensors", model, TINY))
    assert loaded.video_encoder is None
    v, a = torch.rand(2, 256), torch.randn(2, 32)
    assert torch.equal(model.score(v, a).s, loaded.score(v, a).s)


class _Trap:
    """Unpickling this object opens (creates) the marker file: proof that code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (str(self.marker), "w"))


def _pickle_ops(path: Path) -> set[str]:
    """Opcode names of the pickle inside a torch.save file (disassembled, never loaded)."""
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            data = z.read(next(n for n in z.namelist() if n.endswith("data.pkl")))
    else:
        data = path.read_bytes()
    stream, ops = io.BytesIO(data), set()
    while stream.tell() < len(data):  # legacy torch.save files hold several pickles back to back
        try:
            ops |= {op.name for op, _, _ in pickletools.genops(stream)}
        except ValueError:
            break  # raw tensor bytes follow the pickles
    return ops


@pytest.mark.parametrize("zip_format", [True, False])
def test_a_pickle_is_refused_without_running_it(tmp_path: Path, zip_format: bool) -> None:
    marker = tmp_path / "code_ran"
    path = tmp_path / "evil.safetensors"  # the suffix must not matter
    torch.save({"model_state": _Trap(marker)}, path, _use_new_zipfile_serialization=zip_format)
    assert "REDUCE" in _pickle_ops(path)  # a live payload: loading it with pickle would call open()
    with pytest.raises(CheckpointError, match="refuses to unpickle"):
        load_checkpoint(path)
    assert not marker.exists()


def test_a_plain_torch_save_state_dict_is_refused_too(tmp_path: Path) -> None:
    path = tmp_path / "model.pt"
    torch.save(create_fmn(TINY, with_video_encoder=False).state_dict(), path)
    with pytest.raises(CheckpointError, match="refuses to unpickle") as err:
        load_checkpoint(path)
    assert isinstance(err.value, FmnError)


def test_not_a_checkpoint_and_missing_files_are_refused(tmp_path: Path) -> None:
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00not json at all!")
    with pytest.raises(CheckpointError, match="not a safetensors checkpoint"):
        load_checkpoint(junk)
    other = tmp_path / "other.safetensors"
    save_file({"w": torch.zeros(2)}, str(other))
    with pytest.raises(CheckpointError, match="not an FMN Studio checkpoint"):
        load_checkpoint(other)
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "absent.safetensors")


def _resave(path: Path, edit_tensors: object = None, **metadata_changes: str) -> None:
    tensors = load_file(str(path))
    with safe_open(str(path), framework="pt") as f:
        metadata = f.metadata() | metadata_changes
    if callable(edit_tensors):
        edit_tensors(tensors)
    save_file(tensors, str(path), metadata=metadata)


def test_a_shape_mismatch_names_the_key(tmp_path: Path) -> None:
    path = save_checkpoint(tmp_path / "m.safetensors", _trained_looking(with_video_encoder=False), TINY)

    def widen(tensors: dict[str, torch.Tensor]) -> None:
        tensors["speech_proj.weight"] = torch.zeros(16, 40)
        tensors["memory.video.slots"] = torch.zeros(9, 256)

    _resave(path, widen)
    with pytest.raises(CheckpointError, match=r"shape mismatch: memory\.video\.slots \(9, 256\).*speech_proj\.weight"):
        load_checkpoint(path)


def test_a_config_that_does_not_describe_the_tensors_is_refused(tmp_path: Path) -> None:
    path = save_checkpoint(tmp_path / "m.safetensors", _trained_looking(with_video_encoder=False), TINY)
    _resave(path, config=json.dumps(dataclasses.replace(TINY, embed_dim=32).to_dict()))
    with pytest.raises(CheckpointError, match=r"video_proj\.weight \(16, 256\) vs \(32, 256\)"):
        load_checkpoint(path)
    with pytest.raises(CheckpointError, match="does not match its config"):
        save_checkpoint(tmp_path / "n.safetensors", create_fmn(TINY), dataclasses.replace(TINY, memory_capacity=5))


def test_another_format_version_or_unknown_fields_are_refused(tmp_path: Path) -> None:
    path = save_checkpoint(tmp_path / "m.safetensors", _trained_looking(with_video_encoder=False), TINY)
    _resave(path, format_version=str(FORMAT_VERSION + 1))
    with pytest.raises(CheckpointError, match=f"version '{FORMAT_VERSION + 1}'.*reads version {FORMAT_VERSION}"):
        load_checkpoint(path)
    _resave(path, format_version=str(FORMAT_VERSION), config=json.dumps(TINY.to_dict() | {"future_knob": 1}))
    with pytest.raises(CheckpointError, match="future_knob"):
        load_checkpoint(path)


def test_extra_must_be_json(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="JSON"):
        save_checkpoint(tmp_path / "m.safetensors", create_fmn(TINY), TINY, {"fn": lambda: 0})
