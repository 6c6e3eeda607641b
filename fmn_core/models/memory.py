"""The feature memory banks (paper §3.4, DESIGN §2.5-2.6).

Each bank is a ``D x X`` matrix of raw (unprojected) features, zero at the start, that remembers
pairs judged to match. A new pair is compared with every slot by cosine similarity (its *memory
vector*); the video and speech memory vectors are multiplied slot by slot and the maximum,
``Max``, says how strongly the memory recognises the pair. The banks learn during training and
at test time: a pair with S1 > T1 is either written into a new slot (nothing like it is
remembered: m2 < T2) or averaged into the slot it resembles most.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

POLICIES = ("least_used", "oldest")
AVERAGINGS = ("ema", "mean")
READOUTS = ("max", "soft")
UPDATE_KINDS = ("append", "average", "replace")
CONFIRM_RULES = ("paper", "new_voice")
_VOICE = ("voice_sum", "voice_sq", "voice_count")  # PairedMemory's buffers of the user's voice


class FeatureMemoryBank(nn.Module):
    """One bank: ``capacity`` slots of ``dim``-d raw features, with usage bookkeeping.

    Paper §3.4.1 stores the bank as a ``2048 x X`` matrix; here it is ``slots (X, D)``. All state
    lives in buffers (saved with the model, moved by ``.to()``) and is changed only under
    ``torch.no_grad()``: the bank is memory, not a parameter.

    Buffers:
        slots: ``(X, D)`` remembered features, zero when unused.
        used: ``(X,)`` bool, the slot holds a feature.
        hits: ``(X,)`` int64, samples the slot has absorbed (1 on write, +1 per average).
        updated: ``(X,)`` int64, value of ``step`` at the slot's last write (0: never).
        step: ``()`` int64, writes so far (each append, average or replace is one).
        center: ``(D,)`` subtracted from features and slots before every cosine (zero at the
            start; training sets it to the mean training feature). Raw encoder features share
            a large common component (I3D's are non-negative after ReLU, so unrelated clips have
            cosines near 0.9); without it every slot would look like every sample.

    Args:
        dim: D, width of the features.
        capacity: X, number of slots (paper: 50).
    """

    slots: torch.Tensor
    used: torch.Tensor
    hits: torch.Tensor
    updated: torch.Tensor
    step: torch.Tensor
    center: torch.Tensor

    def __init__(self, dim: int, capacity: int) -> None:
        super().__init__()
        if dim < 1 or capacity < 1:
            raise ValueError(f"dim and capacity must be positive, got {dim} and {capacity}")
        self.register_buffer("slots", torch.zeros(capacity, dim))
        self.register_buffer("used", torch.zeros(capacity, dtype=torch.bool))
        self.register_buffer("hits", torch.zeros(capacity, dtype=torch.int64))
        self.register_buffer("updated", torch.zeros(capacity, dtype=torch.int64))
        self.register_buffer("step", torch.zeros((), dtype=torch.int64))
        self.register_buffer("center", torch.zeros(dim))

    @property
    def capacity(self) -> int:
        """X."""
        return self.slots.shape[0]

    @property
    def dim(self) -> int:
        """D."""
        return self.slots.shape[1]

    @property
    def num_used(self) -> int:
        """Slots holding a feature."""
        return int(self.used.sum())

    def memory_vector(self, x: torch.Tensor) -> torch.Tensor:
        """Cosine similarity of each feature with every slot (paper §3.4.2's memory vector).

        Args:
            x: ``(B, D)`` raw features.

        Returns:
            ``(B, X)`` cosines; 0 for unused slots.
        """
        center = self.center.to(x.dtype)
        sims = F.normalize(x - center, dim=1) @ F.normalize(self.slots.to(x.dtype) - center, dim=1).T
        return sims * self.used.to(sims.dtype)

    def free_slot(self) -> int | None:
        """The first unused slot, or None when the bank is full."""
        free = torch.nonzero(~self.used).flatten()
        return int(free[0]) if len(free) else None

    def victim(self, policy: str) -> int:
        """The slot to overwrite when the bank is full.

        Args:
            policy: 'least_used' (fewest hits, ties broken by the oldest write) or 'oldest'
                (the oldest write).
        """
        if policy not in POLICIES:
            raise ValueError(f"policy must be one of {POLICIES}, got {policy!r}")
        candidates = self.used.clone()
        if policy == "least_used":
            candidates &= self.hits == self.hits[self.used].min()
        age = self.updated.masked_fill(~candidates, torch.iinfo(torch.int64).max)
        return int(torch.argmin(age))

    @torch.no_grad()
    def write(self, slot: int, x: torch.Tensor) -> int:
        """Store ``x (D,)`` in ``slot`` as a new memory; returns the step of the write."""
        self.slots[slot] = x.detach().to(self.slots.dtype)
        self.used[slot] = True
        self.hits[slot] = 1
        return self._stamp(slot)

    @torch.no_grad()
    def average(self, slot: int, x: torch.Tensor, alpha: float) -> int:
        """``slots[slot] <- (1 - alpha) * slots[slot] + alpha * x``; returns the step of the write."""
        self.slots[slot].mul_(1.0 - alpha).add_(x.detach().to(self.slots.dtype), alpha=alpha)
        self.hits[slot] += 1
        return self._stamp(slot)

    def _stamp(self, slot: int) -> int:
        self.step += 1
        self.updated[slot] = self.step
        return int(self.step)

    @torch.no_grad()
    def clear(self) -> None:
        """Forget everything (the paper's zero initialisation)."""
        for buf in (self.slots, self.used, self.hits, self.updated, self.step):  # not the center: it is calibration
            buf.zero_()


@dataclass(frozen=True)
class UpdateRecord:
    """One change :meth:`PairedMemory.update` made, for logs and the app's bank view."""

    index: int  # position of the pair in the batch given to update()
    slot: int  # slot written (the same in both banks)
    kind: str  # 'append' (free slot), 'average' (into the best slot) or 'replace' (full bank)
    m2: float | None  # the pair's best mean cosine with the banks before the change; None when empty
    step: int  # the banks' step counter after the change


class PairedMemory(nn.Module):
    """A video bank and a speech bank written in pairs: slot j of both holds one remembered pair.

    Scoring (paper §3.4.2, DESIGN §2.5), from ``m_v``, ``m_a``, the memory vectors of the pair's raw
    features, over used slots:

    - readout 'max' (the paper): ``Max = max_j m_v[j] * m_a[j]``. With ``clamp_negative`` the
      cosines are clipped at 0 first, because the product of two negative cosines (a pair unlike
      both halves of a memory) would otherwise look like agreement.
    - readout 'soft': ``Max = sum_j p_v[j] * p_a[j]`` with ``p = softmax(temperature * m)``: the
      chance that both halves pick the same memory. Raw cosines carry each clip's own scale (a
      voice never heard in training is a little less like every slot); a softmax over the slots
      keeps only which memory a clip resembles most, which is what a match needs.

    Update (paper §3.4.3, DESIGN §2.6), one pair at a time, in batch order:

    1. nothing if ``s1 <= t1``;
    2. ``m2 = max_j (cos(v, Bv_j) + cos(a, Ba_j)) / 2`` over used slots. The paper takes "the
       highest cosine with the banks" without saying how the two banks combine; the mean of the
       two cosines of the *same* slot keeps the pair together, so the slot to average into is
       well defined;
    3. ``m2 < t2`` or no used slot: write the pair into a free slot, or, when the banks are full,
       over the slot the policy picks ('least_used': fewest hits, ties -> oldest; 'oldest');
    4. otherwise ``B_j <- (1 - w) B_j + w x`` in both banks at the best slot j, with ``w = alpha``
       (averaging 'ema': recent pairs weigh most) or ``w = 1 / (hits + 1)`` (averaging 'mean': the
       slot is the plain mean of every pair it absorbed, a steadier prototype).

    A user's confirmation follows the same rule with ``confirm_rule`` 'paper'. With 'new_voice' its
    m2 is ``max_j min(cos(v, Bv_j), cos(a, Ba_j))``: it is averaged only into a slot that remembers
    *both* halves, else it gets a slot of its own. The paper's mean lets a familiar video carry an
    unheard voice past t2 into a class prototype of a hundred pairs, where it moves the prototype
    a little and is lost; in a slot of its own it stays an exemplar of that voice and class, which
    later utterances of the voice resemble, and a second confirmation of the same voice and class
    is averaged into it (``fmn adapt`` measures both rules).

    The user's voice (``learn_voice``): a confirmed pair whose speech is the user's own query
    also teaches the banks how that voice differs from the voices training heard. Its *residual*,
    the speech minus the speech half of the slot whose video half is most like the confirmed
    clip (what training remembered that class to sound like), is added to a running sum; the
    mean residual, shrunk towards zero by how much the residuals disagree (positive-part
    James-Stein: ``mean * max(0, 1 - spread / (n |mean|^2))``, with ``spread`` their variance
    summed over dimensions), is the voice's offset, and :meth:`adjust_voice` subtracts it from
    the user's later spoken queries (speaker mean normalisation, learned from confirmations).
    Residuals rather than the confirmed speech itself, so that confirming one class many times
    learns the voice, not that class; the shrinkage, so that confirmations from voices that differ
    from training each in their own way (several people, one library) move the queries little,
    and a single confirmation not at all. Kept in non-persistent buffers: saved with a library's
    banks (and undone with them), never in a model checkpoint, since a voice is a user's.

    Args:
        video_dim: Dv, width of raw video features.
        speech_dim: Da, width of raw speech features.
        capacity: X, slots per bank (paper: 50).
        t1: S1 above this means the pair is judged a match and may be remembered.
        t2: m2 at or above this means the pair is already remembered (average), below it is new.
        alpha: weight of the new sample in the average.
        policy: which slot a full bank gives up: 'least_used' or 'oldest'.
        clamp_negative: clip cosines at 0 before the product in ``Max`` ('max' readout).
        averaging: 'ema' (weight ``alpha``) or 'mean' (weight ``1 / (hits + 1)``).
        readout: 'max' or 'soft', how the memory vectors make ``Max``.
        temperature: the softmax's sharpness in the 'soft' readout.
        confirm_rule: how a user's confirmations are stored: 'paper' (the rule above) or
            'new_voice' (averaged only into a slot like both halves, else a slot of its own).
        learn_voice: whether confirmations of a user's spoken queries learn the voice's offset.
    """

    voice_sum: torch.Tensor
    voice_sq: torch.Tensor
    voice_count: torch.Tensor

    def __init__(
        self,
        video_dim: int,
        speech_dim: int,
        capacity: int = 50,
        t1: float = 0.5,
        t2: float = 0.8,
        alpha: float = 0.1,
        policy: str = "least_used",
        clamp_negative: bool = True,
        averaging: str = "ema",
        readout: str = "max",
        temperature: float = 20.0,
        confirm_rule: str = "paper",
        learn_voice: bool = True,
    ) -> None:
        super().__init__()
        if policy not in POLICIES:
            raise ValueError(f"policy must be one of {POLICIES}, got {policy!r}")
        if averaging not in AVERAGINGS:
            raise ValueError(f"averaging must be one of {AVERAGINGS}, got {averaging!r}")
        if readout not in READOUTS:
            raise ValueError(f"readout must be one of {READOUTS}, got {readout!r}")
        if temperature <= 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        if confirm_rule not in CONFIRM_RULES:
            raise ValueError(f"confirm_rule must be one of {CONFIRM_RULES}, got {confirm_rule!r}")
        if not 0.0 < alpha <= 1.0:
            raise ValueError(f"alpha must lie in (0, 1], got {alpha}")
        self.video = FeatureMemoryBank(video_dim, capacity)
        self.speech = FeatureMemoryBank(speech_dim, capacity)
        self.t1, self.t2, self.alpha, self.policy = t1, t2, alpha, policy
        self.clamp_negative = clamp_negative
        self.averaging, self.readout, self.temperature = averaging, readout, temperature
        self.confirm_rule = confirm_rule
        self.learn_voice = learn_voice
        self.register_buffer("voice_sum", torch.zeros(speech_dim), persistent=False)
        self.register_buffer("voice_sq", torch.zeros(()), persistent=False)  # sum of the residuals' squared norms
        self.register_buffer("voice_count", torch.zeros((), dtype=torch.int64), persistent=False)

    @property
    def capacity(self) -> int:
        """X."""
        return self.video.capacity

    @property
    def used(self) -> torch.Tensor:
        """``(X,)`` bool, slots holding a pair."""
        return self.video.used

    def _weights(self, m: torch.Tensor, readout: str) -> torch.Tensor:
        """Memory vectors ``(B, X)`` -> what the readout multiplies slot by slot (0 at unused slots)."""
        if readout == "soft":
            if not bool(self.used.any()):
                return torch.zeros_like(m)
            return torch.softmax((self.temperature * m).masked_fill(~self.used, float("-inf")), dim=-1)
        return m.clamp(min=0) if self.clamp_negative else m

    def _best(self, w_v: torch.Tensor, w_a: torch.Tensor, readout: str) -> tuple[torch.Tensor, torch.Tensor]:
        """``Max`` and the slot that gave it (the one that gave most, for 'soft') from broadcastable weights.

        Value 0 and slot -1 where no slot is used.
        """
        agreement = (w_v * w_a).masked_fill(~self.used, float("-inf"))
        values, slots = agreement.max(dim=-1)
        if readout == "soft":
            values = agreement.masked_fill(~self.used, 0.0).sum(dim=-1)
        empty = ~self.used.any()
        return values.masked_fill(empty, 0.0), slots.masked_fill(empty, -1)

    def max_score(
        self, v_raw: torch.Tensor, a_raw: torch.Tensor, readout: str | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``Max`` of aligned pairs.

        Args:
            v_raw: ``(B, Dv)`` raw video features.
            a_raw: ``(B, Da)`` raw speech features.
            readout: 'max' or 'soft'; the memory's own when None.

        Returns:
            values ``(B,)`` (0 with an empty memory) and the argmax slot ``(B,)`` int64 (-1: empty).
        """
        readout = readout or self.readout
        w_v = self._weights(self.video.memory_vector(v_raw), readout)
        w_a = self._weights(self.speech.memory_vector(a_raw), readout)
        return self._best(w_v, w_a, readout)

    def max_score_pairwise(
        self, v_raw: torch.Tensor, a_raw: torch.Tensor, chunk: int = 256, readout: str | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``Max`` of every pair of two sets.

        Args:
            v_raw: ``(N, Dv)`` raw video features.
            a_raw: ``(M, Da)`` raw speech features.
            chunk: rows of ``v_raw`` at once; bounds memory to ``chunk x M x X`` floats.
            readout: 'max' or 'soft'; the memory's own when None.

        Returns:
            values ``(N, M)`` and slots ``(N, M)``; entry ``[n, m]`` equals ``max_score`` of that pair.
        """
        readout = readout or self.readout
        m_v = self._weights(self.video.memory_vector(v_raw), readout)
        m_a = self._weights(self.speech.memory_vector(a_raw), readout)
        parts = [self._best(m_v[i : i + chunk, None, :], m_a[None], readout) for i in range(0, len(m_v), chunk)]
        if not parts:
            return m_v.new_zeros((0, len(m_a))), torch.zeros((0, len(m_a)), dtype=torch.int64, device=m_v.device)
        return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])

    def best_match(self, v: torch.Tensor, a: torch.Tensor, both: bool = False) -> tuple[float | None, int | None]:
        """m2 and its slot for one pair ``v (Dv,)``, ``a (Da,)``: the best mean of the two cosines.

        With ``both`` the best *smaller* of the two cosines: how well one slot remembers both halves.
        """
        if not bool(self.used.any()):
            return None, None
        m_v, m_a = self.video.memory_vector(v[None])[0], self.speech.memory_vector(a[None])[0]
        mean = torch.minimum(m_v, m_a) if both else (m_v + m_a) / 2
        mean = mean.masked_fill(~self.used, float("-inf"))
        slot = int(torch.argmax(mean))
        return float(mean[slot]), slot

    @torch.no_grad()
    def update(
        self, v_raw: torch.Tensor, a_raw: torch.Tensor, s1: torch.Tensor, confirmed: bool = False
    ) -> list[UpdateRecord]:
        """Remember the pairs judged to match (paper §3.4.3); see the class docstring for the rule.

        Args:
            v_raw: ``(B, Dv)`` raw video features.
            a_raw: ``(B, Da)`` raw speech features.
            s1: ``(B,)`` fusion scores; a user's confirmation is passed as 1.
            confirmed: the pairs are a user's confirmations, the strongest signal (DESIGN §2.6):
                averaged into a slot they weigh at least ``alpha`` however many pairs it holds
                (with 'mean' averaging a slot of a hundred pairs would otherwise move 1 %).

        Returns:
            One record per pair that changed the banks, in batch order.
        """
        records = []
        for i in torch.nonzero(s1.detach().flatten() > self.t1).flatten().tolist():
            records.append(self._remember(i, v_raw[i].detach(), a_raw[i].detach(), confirmed))
        return records

    def _remember(self, index: int, v: torch.Tensor, a: torch.Tensor, confirmed: bool = False) -> UpdateRecord:
        m2, best = self.best_match(v, a, both=confirmed and self.confirm_rule == "new_voice")
        if best is not None and m2 is not None and m2 >= self.t2:  # both None when the memory is empty
            weight = self.alpha if self.averaging == "ema" else 1.0 / (int(self.video.hits[best]) + 1)
            if confirmed:
                weight = max(weight, self.alpha)
            self.video.average(best, v, weight)
            step = self.speech.average(best, a, weight)
            return UpdateRecord(index, best, "average", m2, step)
        slot = self.video.free_slot()
        kind = "append"
        if slot is None:
            slot, kind = self.video.victim(self.policy), "replace"
        self.video.write(slot, v)
        step = self.speech.write(slot, a)
        return UpdateRecord(index, slot, kind, m2, step)

    @torch.no_grad()
    def hear_voice(self, v: torch.Tensor, a: torch.Tensor) -> None:
        """Add a confirmed pair's speech residual to the voice's offset (see the class docstring).

        Call before the pair is written, so that the slot it is compared with is what the banks
        remembered of its class, not the pair itself. Does nothing with ``learn_voice`` off or
        empty banks.

        Args:
            v: ``(Dv,)`` raw features of the confirmed clip.
            a: ``(Da,)`` raw features of the user's utterance, as it was heard (not adjusted).
        """
        if not self.learn_voice or not bool(self.used.any()):
            return
        m_v = self.video.memory_vector(v[None])[0].masked_fill(~self.used, float("-inf"))
        slot = int(torch.argmax(m_v))
        residual = (a - self.speech.slots[slot]).to(self.voice_sum.dtype)
        self.voice_sum += residual
        self.voice_sq += residual.square().sum()
        self.voice_count += 1

    @property
    def voice_offset(self) -> torch.Tensor:
        """``(Da,)`` the voice's offset: the shrunk mean residual of the user's confirmed utterances.

        Zero before two confirmations (one residual says nothing of how residuals spread).
        """
        n = int(self.voice_count)
        if n < 2:
            return torch.zeros_like(self.voice_sum)
        mean = self.voice_sum / n
        mean_sq = float(mean.square().sum())
        spread = max(0.0, (float(self.voice_sq) - n * mean_sq) / (n - 1))  # summed per-dimension variance
        shrink = max(0.0, 1.0 - spread / (n * mean_sq)) if mean_sq > 0 else 0.0
        return mean * shrink

    def adjust_voice(self, a_raw: torch.Tensor) -> torch.Tensor:
        """A user's spoken query ``(..., Da)`` with the learned voice offset taken away."""
        if not self.learn_voice or int(self.voice_count) < 2:
            return a_raw
        return a_raw - self.voice_offset.to(a_raw.device, a_raw.dtype)

    @torch.no_grad()
    def clear(self) -> None:
        """Forget every pair, and the voice."""
        self.video.clear()
        self.speech.clear()
        self.voice_sum.zero_()
        self.voice_sq.zero_()
        self.voice_count.zero_()

    def snapshot(self) -> dict[str, torch.Tensor]:
        """Cloned copies of every buffer (the app's undo point)."""
        return {name: buf.detach().clone() for name, buf in self.named_buffers()}

    @torch.no_grad()
    def restore(self, snapshot: dict[str, torch.Tensor]) -> None:
        """Put back the state of a :meth:`snapshot`.

        A snapshot without the voice's buffers (banks a library stored before the voice was
        learned) restores the banks and starts the voice afresh.

        Raises:
            ValueError: the snapshot comes from banks of another shape.
        """
        buffers = dict(self.named_buffers())
        snapshot = {name: torch.zeros_like(buffers[name]) for name in _VOICE} | dict(snapshot)
        if snapshot.keys() != buffers.keys():
            raise ValueError(f"snapshot has buffers {sorted(snapshot)}, the memory has {sorted(buffers)}")
        for name, buf in buffers.items():
            if snapshot[name].shape != buf.shape:
                raise ValueError(f"snapshot's {name} is {tuple(snapshot[name].shape)}, expected {tuple(buf.shape)}")
            buf.copy_(snapshot[name])
