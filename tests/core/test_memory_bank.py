"""The memory banks' update rule (paper §3.4.3, DESIGN §2.6) case by case, replacement policies,
undo snapshots, and pairwise Max equal to aligned Max."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

from fmn_core.models import FeatureMemoryBank, PairedMemory


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """Tiny tensors: a second thread only adds synchronisation (and stalls on a busy machine)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _memory(capacity: int = 3, policy: str = "least_used", alpha: float = 0.25) -> PairedMemory:
    return PairedMemory(video_dim=4, speech_dim=3, capacity=capacity, t1=0.5, t2=0.9, alpha=alpha, policy=policy)


def _pair(k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Pair number k: orthogonal to every other pair in both modalities (k < 3)."""
    return torch.eye(4)[k : k + 1] * 2.0, torch.eye(3)[k : k + 1] * 3.0


def _buffers(memory: PairedMemory) -> dict[str, torch.Tensor]:
    return {name: buf.clone() for name, buf in memory.named_buffers()}


def test_bank_state_is_buffers_only() -> None:
    memory = _memory()
    assert list(memory.parameters()) == []
    assert {name for name, _ in memory.named_buffers()} == {
        f"{bank}.{buf}"
        for bank in ("video", "speech")
        for buf in ("slots", "used", "hits", "updated", "step", "center")
    } | {"voice_sum", "voice_sq", "voice_count"}


def test_center_is_subtracted_before_the_cosine() -> None:
    bank = FeatureMemoryBank(dim=2, capacity=2)
    bank.write(0, torch.tensor([1.0, 0.9]))
    bank.center.copy_(torch.tensor([0.0, 1.0]))  # a shared component every feature carries
    m = bank.memory_vector(torch.tensor([[1.0, 1.1], [-1.0, 1.1]]))
    # Without the center both samples would look alike to the slot (cosines 0.99 and 0.05 vs ...);
    # with it, the first points the slot's way and the second the opposite way.
    assert m[0, 0] > 0.9 and m[1, 0] < -0.9
    assert m[0, 1] == 0.0


def test_memory_vector_is_cosine_and_zero_for_unused_slots() -> None:
    bank = FeatureMemoryBank(dim=2, capacity=3)
    bank.write(0, torch.tensor([1.0, 0.0]))
    bank.write(1, torch.tensor([1.0, 1.0]))
    m = bank.memory_vector(torch.tensor([[2.0, 0.0], [0.0, -1.0]]))
    expected = torch.tensor([[1.0, 2**-0.5, 0.0], [0.0, -(2**-0.5), 0.0]])
    assert torch.allclose(m, expected, atol=1e-6)


def test_s1_at_or_below_t1_changes_nothing() -> None:
    memory = _memory()
    v, a = _pair(0)
    before = _buffers(memory)
    assert memory.update(v, a, torch.tensor([0.5])) == []  # equal to t1 is not above it
    after = _buffers(memory)
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_new_pairs_take_free_slots() -> None:
    memory = _memory()
    records = memory.update(torch.cat([_pair(0)[0], _pair(1)[0]]), torch.cat([_pair(0)[1], _pair(1)[1]]), torch.ones(2))
    assert [(r.index, r.slot, r.kind, r.step) for r in records] == [(0, 0, "append", 1), (1, 1, "append", 2)]
    assert records[0].m2 is None and records[1].m2 == pytest.approx(0.0)  # orthogonal to slot 0: m2 < t2
    assert memory.used.tolist() == [True, True, False]
    assert torch.equal(memory.video.slots[1], _pair(1)[0][0]) and torch.equal(memory.speech.slots[1], _pair(1)[1][0])
    assert memory.video.hits.tolist() == [1, 1, 0] and memory.speech.updated.tolist() == [1, 2, 0]


def test_known_pair_is_averaged_into_the_best_slot() -> None:
    memory = _memory(alpha=0.25)
    for k in (0, 1):
        memory.update(*_pair(k), torch.ones(1))
    v = torch.tensor([[0.1, 2.0, 0.0, 0.0]])  # close to pair 1's video
    a = torch.tensor([[0.0, 3.0, 0.2]])  # close to pair 1's speech
    old_v, old_a = memory.video.slots[1].clone(), memory.speech.slots[1].clone()
    (record,) = memory.update(v, a, torch.tensor([0.9]))
    expected_m2 = (torch.cosine_similarity(v[0], old_v, 0) + torch.cosine_similarity(a[0], old_a, 0)) / 2
    assert (record.slot, record.kind, record.step) == (1, "average", 3)
    assert record.m2 == pytest.approx(float(expected_m2)) and record.m2 >= memory.t2
    assert torch.allclose(memory.video.slots[1], 0.75 * old_v + 0.25 * v[0])
    assert torch.allclose(memory.speech.slots[1], 0.75 * old_a + 0.25 * a[0])
    assert memory.video.hits.tolist() == [1, 2, 0] and memory.video.updated.tolist() == [1, 3, 0]
    assert memory.video.num_used == memory.speech.num_used == 2


def _fill(memory: PairedMemory) -> None:
    """Each pair written, then seen again (averaged), except the last: the least used slot is the newest."""
    for k in (0, 0, 1, 1, 2):
        memory.update(*_pair(k), torch.ones(1))
    assert memory.video.hits.tolist() == [2, 2, 1] and memory.video.updated.tolist() == [2, 4, 5]


def _novel() -> tuple[torch.Tensor, torch.Tensor]:
    return torch.tensor([[0.0, 0.0, 0.0, 1.0]]), torch.tensor([[1.0, -1.0, 0.0]])


def test_full_bank_replaces_the_least_used_slot() -> None:
    memory = _memory(policy="least_used")
    _fill(memory)
    (record,) = memory.update(*_novel(), torch.ones(1))
    assert (record.slot, record.kind) == (2, "replace")  # fewest hits, though the newest
    assert torch.equal(memory.video.slots[2], _novel()[0][0]) and memory.video.hits[2] == 1


def test_least_used_ties_go_to_the_oldest() -> None:
    memory = _memory(policy="least_used")
    for k in (0, 1, 2):
        memory.update(*_pair(k), torch.ones(1))
    memory.update(*_pair(0), torch.ones(1))  # hits [2, 1, 1]: slots 1 and 2 tie, 1 is older
    assert memory.update(*_novel(), torch.ones(1))[0].slot == 1


def test_full_bank_replaces_the_oldest_slot() -> None:
    memory = _memory(policy="oldest")
    _fill(memory)
    (record,) = memory.update(*_novel(), torch.ones(1))
    assert (record.slot, record.kind) == (0, "replace")  # last written at step 2, the oldest
    assert memory.update(*_novel(), torch.ones(1))[0].kind == "average"  # now known
    (record,) = memory.update(torch.tensor([[1.0, 1.0, 0.0, 0.0]]), torch.tensor([[0.0, 1.0, 1.0]]), torch.ones(1))
    assert (record.slot, record.kind) == (1, "replace")  # updated [7, 4, 5]


def test_snapshot_and_restore_give_identical_buffers() -> None:
    memory = _memory()
    memory.update(*_pair(0), torch.ones(1))
    snap = memory.snapshot()
    before = _buffers(memory)
    memory.update(*_pair(1), torch.ones(1))
    memory.update(*_pair(0), torch.ones(1))
    assert not torch.equal(memory.video.slots, before["video.slots"])
    memory.restore(snap)
    after = _buffers(memory)
    assert all(torch.equal(before[k], after[k]) and before[k].dtype == after[k].dtype for k in before)
    memory.update(*_pair(1), torch.ones(1))  # the snapshot is a copy, not a view of the live banks
    assert snap["video.used"].tolist() == [True, False, False]
    with pytest.raises(ValueError, match="snapshot"):
        _memory(capacity=4).restore(snap)


def test_max_score_is_the_best_product_of_memory_vectors() -> None:
    memory = _memory()
    assert memory.max_score(*_pair(0))[1].tolist() == [-1]  # empty memory: no slot, value 0
    for k in (0, 1):
        memory.update(*_pair(k), torch.ones(1))
    v = torch.tensor([[1.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0]])
    a = torch.tensor([[0.0, 1.0, 0.0], [-1.0, 0.0, 0.0]])
    values, slots = memory.max_score(v, a)
    assert torch.allclose(values, torch.tensor([2**-0.5, 0.0])) and slots[0] == 1
    m_v, m_a = memory.video.memory_vector(v), memory.speech.memory_vector(a)
    assert torch.allclose(values[:1], (m_v * m_a).max(dim=1).values[:1])


def test_negative_cosines_do_not_multiply_into_agreement() -> None:
    for clamp, expected in ((True, 0.0), (False, 1.0)):
        memory = PairedMemory(2, 2, capacity=2, clamp_negative=clamp)
        memory.update(torch.tensor([[1.0, 0.0]]), torch.tensor([[1.0, 0.0]]), torch.ones(1))
        values, _ = memory.max_score(torch.tensor([[-1.0, 0.0]]), torch.tensor([[-1.0, 0.0]]))
        assert values.item() == pytest.approx(expected)


def test_max_score_pairwise_equals_max_score_on_aligned_pairs() -> None:
    torch.manual_seed(0)
    memory = PairedMemory(video_dim=6, speech_dim=5, capacity=4, t2=0.99)
    memory.update(torch.rand(3, 6), torch.randn(3, 5), torch.ones(3))
    v, a = torch.rand(5, 6), torch.randn(4, 5)
    values, slots = memory.max_score_pairwise(v, a, chunk=2)
    assert values.shape == slots.shape == (5, 4)
    for n in range(5):
        row_values, row_slots = memory.max_score(v[n].expand(4, -1), a)
        assert torch.allclose(values[n], row_values) and torch.equal(slots[n], row_slots)


def test_updates_do_not_track_gradients() -> None:
    memory = _memory()
    v = torch.rand(1, 4, requires_grad=True)
    memory.update(v * 2, torch.rand(1, 3), torch.ones(1))
    assert not memory.video.slots.requires_grad
    values, _ = memory.max_score(v, torch.rand(1, 3))
    values.sum().backward()  # scoring still lets gradients reach the features
    assert v.grad is not None


def test_mean_averaging_makes_a_slot_the_mean_of_its_pairs() -> None:
    memory = PairedMemory(2, 2, capacity=2, t2=0.5, averaging="mean")
    samples = torch.tensor([[1.0, 0.1], [1.0, 0.3], [1.0, -0.1], [1.0, 0.5]])
    for x in samples:
        memory.update(x[None], x[None], torch.ones(1))  # all alike: one slot absorbs them all
    assert memory.video.num_used == 1 and int(memory.video.hits[0]) == 4
    assert torch.allclose(memory.video.slots[0], samples.mean(dim=0))
    assert torch.allclose(memory.speech.slots[0], samples.mean(dim=0))


def test_soft_readout_is_the_agreement_of_slot_softmaxes() -> None:
    memory = PairedMemory(video_dim=4, speech_dim=3, capacity=3, t2=0.9, readout="soft", temperature=5.0)
    for k in range(2):
        memory.update(*_pair(k), torch.ones(1))
    v = torch.tensor([[1.0, 0.2, 0.0, 0.0], [0.1, 1.0, 0.0, 0.0]])
    a = torch.tensor([[1.0, 0.0, 0.3], [1.0, 0.1, 0.0]])
    values, slots = memory.max_score(v, a)
    m_v, m_a = memory.video.memory_vector(v)[:, :2], memory.speech.memory_vector(a)[:, :2]
    expected = (torch.softmax(5.0 * m_v, dim=1) * torch.softmax(5.0 * m_a, dim=1)).sum(dim=1)
    assert torch.allclose(values, expected)
    assert slots.tolist() == [0, 0]  # both speech clips resemble pair 0; the first video does too
    # The same memory read either way: the pair whose halves pick the same slot agrees most.
    assert values[0] > values[1]
    pairwise, _ = memory.max_score_pairwise(v, a)
    assert torch.allclose(pairwise.diagonal(), values)


def test_soft_readout_of_an_empty_memory_is_zero() -> None:
    memory = PairedMemory(2, 2, capacity=2, readout="soft")
    values, slots = memory.max_score(torch.rand(3, 2), torch.rand(3, 2))
    assert torch.equal(values, torch.zeros(3)) and torch.equal(slots, torch.full((3,), -1))


def test_unknown_averaging_or_readout_is_refused() -> None:
    with pytest.raises(ValueError, match="averaging"):
        PairedMemory(2, 2, averaging="median")
    with pytest.raises(ValueError, match="readout"):
        PairedMemory(2, 2, readout="min")
    with pytest.raises(ValueError, match="temperature"):
        PairedMemory(2, 2, readout="soft", temperature=0.0)


def test_a_confirmation_moves_a_full_slot_at_least_alpha() -> None:
    memory = PairedMemory(2, 2, capacity=2, t2=0.5, alpha=0.1, averaging="mean")
    for _ in range(99):
        memory.update(torch.tensor([[1.0, 0.0]]), torch.tensor([[1.0, 0.0]]), torch.ones(1))
    memory.update(torch.tensor([[1.0, 1.0]]), torch.tensor([[1.0, 1.0]]), torch.ones(1))  # one pair of a hundred
    assert memory.video.slots[0].tolist() == pytest.approx([1.0, 0.01])
    memory.update(torch.tensor([[1.0, 1.0]]), torch.tensor([[1.0, 1.0]]), torch.ones(1), confirmed=True)
    assert memory.video.slots[0].tolist() == pytest.approx([1.0, 0.01 + 0.1 * (1.0 - 0.01)])


def _two_class_memory() -> PairedMemory:
    mem = PairedMemory(4, 3, capacity=4)
    for c in range(2):
        mem.video.write(c, torch.eye(4)[c])
        mem.speech.write(c, torch.eye(3)[c])
    return mem


def test_the_voice_offset_is_the_shrunk_mean_residual() -> None:
    mem = _two_class_memory()
    lean = torch.tensor([0.0, 0.5, 2.0])
    clip0, clip1 = torch.tensor([0.9, 0.1, 0, 0]), torch.tensor([0.1, 0.9, 0, 0])
    mem.hear_voice(clip0, torch.eye(3)[0] + lean)
    assert int(mem.voice_count) == 1 and float(mem.voice_offset.abs().sum()) == 0  # one says nothing of the spread
    q = torch.randn(2, 3)
    assert mem.adjust_voice(q) is q
    mem.hear_voice(clip1, torch.eye(3)[1] + lean + torch.tensor([0.1, -0.1, 0.0]))
    mean = lean + torch.tensor([0.05, -0.05, 0.0])
    spread = 2 * 0.05**2 * 2  # per dimension: the two residuals' variance (n - 1 = 1), summed
    expected = mean * (1 - spread / (2 * float(mean.square().sum())))
    torch.testing.assert_close(mem.voice_offset, expected)
    torch.testing.assert_close(mem.adjust_voice(q), q - expected)

    mem.clear()
    mem = _two_class_memory()
    mem.hear_voice(clip0, torch.eye(3)[0] + torch.tensor([0.0, 0.0, 2.0]))  # two voices, each its own way
    mem.hear_voice(clip1, torch.eye(3)[1] + torch.tensor([0.0, 0.0, -2.0]))
    assert float(mem.voice_offset.abs().sum()) == 0  # they disagree: no offset


def test_the_voice_is_kept_with_the_banks_not_the_model() -> None:
    mem = _two_class_memory()
    empty = mem.snapshot()
    for c in range(2):
        mem.hear_voice(torch.eye(4)[c], torch.eye(3)[c] + 1.0)
    assert int(mem.voice_count) == 2
    mem.learn_voice = False
    q = torch.randn(3)
    assert mem.adjust_voice(q) is q
    mem.hear_voice(torch.eye(4)[0], torch.tensor([9.0, 9, 9]))
    assert int(mem.voice_count) == 2  # nothing heard with the voice off
    mem.learn_voice = True

    assert not any(k.startswith("voice") for k in mem.state_dict())  # checkpoints stay as they were
    learned = mem.snapshot()
    assert int(learned["voice_count"]) == 2  # a library's stored banks keep it
    old = {k: v for k, v in learned.items() if not k.startswith("voice")}  # banks stored before the voice
    mem.restore(old)
    assert int(mem.voice_count) == 0 and torch.equal(mem.video.slots, learned["video.slots"])
    mem.restore(learned)
    torch.testing.assert_close(mem.voice_offset, torch.ones(3))
    mem.clear()
    assert int(mem.voice_count) == 0 and float(mem.voice_sum.abs().sum()) == 0 and float(mem.voice_sq) == 0
    mem.restore(empty)
    with pytest.raises(ValueError):
        mem.restore(learned | {"voice_sum": torch.zeros(5)})
