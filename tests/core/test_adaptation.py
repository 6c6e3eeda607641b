"""The `fmn adapt` protocol: confirmations of a new voice, scored on the voice's other utterances."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch

from fmn_core.eval import adaptation
from fmn_core.eval.adaptation import AdaptationReport, adapt_features, pick_confirmations
from fmn_core.eval.metrics import retrieval_metrics
from fmn_core.eval.scoring import pair_scores
from fmn_core.models.fmn import FeatureMemoryNetwork, FMNConfig, create_fmn
from fmn_core.models.speech import SpeechEncoderConfig

CLASSES = 3
PER_CLASS = 4  # utterances of the new voice per class


def _net(confirm: str = "paper") -> FeatureMemoryNetwork:
    """A small FMN whose S1 is a constant 0.5, so the memory alone orders the videos."""
    cfg = FMNConfig(
        speech=SpeechEncoderConfig(hidden=16, layers=1), embed_dim=16, fusion_hidden=16, memory_capacity=10,
        t1=0.5, t2=0.4, memory_readout="max", combination="product", memory_confirm=confirm,
    )  # fmt: skip
    net = create_fmn(cfg, with_video_encoder=False).eval()
    with torch.no_grad():
        for p in net.fusion.parameters():
            p.zero_()
    return net


def _leaning_voice(c: int, eye: torch.Tensor) -> torch.Tensor:
    """Class c in its own direction (not the prototype's), leaning towards the prototype of c+1."""
    return 3 * eye[10] + 0.3 * eye[(c + 1) % CLASSES] + eye[20 + c]


def _case(
    confirm: str = "paper", speak: Callable[[int, torch.Tensor], torch.Tensor] = _leaning_voice
) -> tuple[FeatureMemoryNetwork, dict]:
    """Banks holding one prototype pair per class, and a new voice the prototypes misread.

    ``speak(c, eye)`` is the voice's class c (before a little noise). By default the voice says
    class c along its own directions (not the prototypes') and leans towards the prototype of
    class c+1, so the shipped banks rank every video of the wrong class first; its utterances of
    one class are alike, so an exemplar of the voice tells the classes apart.
    """
    net = _net(confirm)
    dv, da = net.memory.video.dim, net.memory.speech.dim
    gen = torch.Generator().manual_seed(0)
    eye_v, eye_a = torch.eye(dv), torch.eye(da)
    for c in range(CLASSES):
        net.memory.video.write(c, eye_v[c])
        net.memory.speech.write(c, eye_a[c])
    videos = torch.stack([eye_v[c] + 0.05 * torch.randn(dv, generator=gen) for c in range(CLASSES) for _ in range(2)])
    speech = torch.stack(
        [speak(c, eye_a) + 0.05 * torch.randn(da, generator=gen) for c in range(CLASSES) for _ in range(PER_CLASS)]
    )
    labels = [f"c{c}" for c in range(CLASSES)]
    data = {
        "v_raw": videos,
        "video_labels": [lab for lab in labels for _ in range(2)],
        "a_raw": speech,
        "speech_labels": [lab for lab in labels for _ in range(PER_CLASS)],
        "families": ["newvoice"] * len(speech),
    }
    return net, data


def test_picks_are_seeded_nested_and_leave_every_class_a_query() -> None:
    labels = ["a"] * 3 + ["b"] * 1 + ["c"] * 6
    one, two, five = (pick_confirmations(labels, k, seed=0, family="f") for k in (1, 2, 5))
    assert one == pick_confirmations(labels, 1, seed=0, family="f")
    assert set(one) <= set(two) <= set(five)
    for k, picks in ((1, one), (2, two), (5, five)):
        for lab in "abc":
            n = labels.count(lab)
            assert sum(labels[i] == lab for i in picks) == min(k, n - 1)
    assert pick_confirmations(labels, 0, seed=0, family="f") == []
    assert any(pick_confirmations(labels, 2, seed=s, family="f") != two for s in range(1, 5))


def test_confirmed_utterances_are_never_scored(monkeypatch: pytest.MonkeyPatch) -> None:
    net, data = _case()
    run: list[torch.Tensor] = []  # confirmations of the run under way
    runs = 0
    confirm = net.confirm_match

    def spy_confirm(v: torch.Tensor, a: torch.Tensor, voice: bool = False) -> list:
        run.append(a[0].clone())
        return confirm(v, a, voice)

    def spy_scores(net_: FeatureMemoryNetwork, v: torch.Tensor, a: torch.Tensor, *args, **kw) -> np.ndarray:
        nonlocal runs
        if len(a) > 1 and run:  # a run's ranking of its remaining utterances, after its confirmations
            assert not any(torch.equal(x, c) for x in a for c in run)
            run.clear()
            runs += 1
        return pair_scores(net_, v, a, *args, **kw)

    monkeypatch.setattr(net, "confirm_match", spy_confirm)
    monkeypatch.setattr(adaptation, "pair_scores", spy_scores)
    cells = adapt_features(net, **data, ks=(1, 2), seeds=2, rules=("paper", "new_voice"))
    assert runs == 2 * 2 * 2
    for cell in cells:
        assert all(q + n == len(data["a_raw"]) for q, n in zip(cell.n_queries, cell.n_confirmed, strict=True))
        assert cell.n_confirmed == [cell.k * CLASSES] * 2


def test_k0_is_the_plain_ranking() -> None:
    net, data = _case()
    (cell,) = adapt_features(net, **data, ks=(0,), seeds=1, rules=("paper",))
    plain = retrieval_metrics(
        pair_scores(net, data["v_raw"], data["a_raw"]).T, data["speech_labels"], data["video_labels"], ks=(1,)
    )
    assert cell.r1 == cell.r1_before == [plain.recall_at[1]]
    assert cell.map == cell.map_before == [plain.map]
    assert cell.n_confirmed == [0] and cell.n_changes == [0]


def test_every_run_starts_from_the_shipped_banks() -> None:
    net, data = _case()
    before = net.memory.snapshot()
    steps: list[int] = []
    confirm = net.confirm_match

    def spy(v: torch.Tensor, a: torch.Tensor, voice: bool = False) -> list:
        steps.append(int(net.memory.video.step))
        return confirm(v, a, voice)

    net.confirm_match = spy  # type: ignore[method-assign]
    cells = adapt_features(net, **data, ks=(2,), seeds=3, rules=("paper", "new_voice"))
    per_run = 2 * CLASSES
    assert len(steps) == per_run * 6
    assert steps[::per_run] == [int(before["video.step"])] * 6  # each run's first confirmation sees the shipped banks
    assert all(sum(c.n_changes) > 0 for c in cells)  # the confirmations did change the banks
    after = net.memory.snapshot()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert net.memory.confirm_rule == "paper" and net.memory.learn_voice


def test_new_voice_rule_teaches_the_voice_where_the_paper_rule_cannot() -> None:
    net, data = _case()
    cells = {c.rule: c for c in adapt_features(net, **data, ks=(1,), seeds=2, rules=("paper", "new_voice"))}
    assert cells["paper"].r1_before == [0.0, 0.0]  # the shipped banks misread the voice
    assert np.mean(cells["new_voice"].r1) == 1.0
    assert np.mean(cells["new_voice"].r1) > np.mean(cells["paper"].r1)


def test_learning_the_voice_undoes_a_voice_wide_offset() -> None:
    """A voice that says every class with the same lean towards class 0's prototype: the banks
    read it all as class 0 until its offset, learned from one confirmation per class, is taken away."""
    net, data = _case(speak=lambda c, eye: eye[c] + 2 * eye[0] + eye[15])
    cells = {c.rule: c for c in adapt_features(net, **data, ks=(1,), seeds=2, rules=adaptation.run_names(["paper"]))}
    assert set(cells) == {"paper", "paper+voice"}
    assert np.mean(cells["paper"].r1_before) < 0.5  # the lean makes most of it class 0
    assert np.mean(cells["paper+voice"].r1) == 1.0
    assert np.mean(cells["paper+voice"].r1) > np.mean(cells["paper"].r1)
    assert int(net.memory.voice_count) == 0  # every run put the voice back


def test_new_voice_rule_is_saved_in_the_config_and_old_configs_load() -> None:
    cfg = FMNConfig(memory_confirm="new_voice")
    assert FMNConfig.from_dict(cfg.to_dict()).memory_confirm == "new_voice"
    old = cfg.to_dict()
    del old["memory_confirm"]
    assert FMNConfig.from_dict(old).memory_confirm == "paper"
    with pytest.raises(ValueError, match="memory_confirm"):
        FMNConfig(memory_confirm="sometimes")


def test_report_table_has_a_row_per_family_and_k() -> None:
    net, data = _case()
    cells = adapt_features(net, **data, ks=(1, 2), seeds=2, rules=("paper", "new_voice"))
    report = AdaptationReport("test", ["paper", "new_voice"], [1, 2], 2, {"newvoice": {"seen": False}}, cells)
    lines = report.table().splitlines()
    assert len(lines) == 2 + 2 and "R@1 new_voice" in lines[0] and "newvoice (unseen)" in lines[2]
    assert report.to_dict()["cells"][0]["summary"]["seeds"] == 2


def test_ceilings_say_what_the_confirmed_utterances_alone_would_name() -> None:
    """The default voice says each class alike, so after one confirmation per class the nearest
    confirmed utterance names every other one, though the paper rule's ranking still misreads it."""
    net, data = _case()
    (paper,) = adapt_features(net, **data, ks=(1,), seeds=2, rules=("paper",))
    assert paper.r1_exemplar == [1.0, 1.0] and paper.r1_either == [1.0, 1.0]
    assert np.mean(paper.r1) < 1.0  # the ranking misses some: those are what the neighbour could add
    assert paper.misses_top3 == [1.0, 1.0]  # only 3 classes: every miss has its class among the best 3
    (plain,) = adapt_features(net, **data, ks=(0,), seeds=1, rules=("paper",))
    assert np.isnan(plain.r1_exemplar[0]) and plain.r1_either == plain.r1  # nothing confirmed, no neighbour
    report = AdaptationReport("test", ["paper"], [1], 2, {"newvoice": {"seen": False}}, [paper])
    lines = report.ceiling_table().splitlines()
    assert len(lines) == 3 and "R@1 nearest confirmed" in lines[0] and "100.0" in lines[2]
