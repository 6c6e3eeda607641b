"""The settings of stage 2 (``FMNStageConfig``): batches, losses, augmentation, epochs and the memory grids.

They are saved with the model (``TrainConfig``); ``train`` fingerprints the ones stage-2 training
depends on, so that a change to the memory grids alone re-chooses the memory without retraining.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

Progress = Callable[[int, int, str], None]  # progress(done, total, message) of stage 2 and its memory choice
SELECTION_GROUPS = ("family", "speaker", "clip")  # what the validation figure can be a mean over


@dataclass(frozen=True)
class FMNStageConfig:
    """Settings of stage 2."""

    epochs: int = 60  # passes over the training speech (validation still gained up to ~50)
    classes_per_batch: int = 10  # P
    per_class: int = 4  # K speech clips and K videos of each class in a batch
    # Background videos (a label no speech has, e.g. the idle stretches of a recipe) added to each
    # batch: negatives for every spoken query there, in the triplet loss and the BCE.
    background_per_batch: int = 4
    lr: float = 4e-3  # AdamW peak learning rate (one-cycle schedule)
    weight_decay: float = 1e-4
    margin: float = 0.2  # triplet margin on cosine similarity
    hard_negatives: bool = False  # VSE++'s hardest negative instead of all negatives
    bce_weight: float = 1.0  # weight of the BCE on S1 beside the triplet loss
    # Weight of an auxiliary cross-entropy that classifies each projected speech clip by its label
    # (a training-only linear head). It gives the speech branch a direct, per-clip signal of what
    # was said, besides the relative one of the triplet; 0 turns it off.
    class_weight: float = 1.0
    # Weight of an adversarial speaker classifier on the projected speech (through gradient
    # reversal, Ganin & Lempitsky 2015), meant to push the encoder to forget who is speaking so
    # that a new voice lands where known voices saying the same words do. 0 turns it off. Run N:
    # validation 0.885 against 0.882 without it (0.876 against 0.863 with S = S1); 1.0 gave
    # 0.872 and 0.25 gave 0.875. But the head stayed at chance and a fresh probe finds as much
    # speaker identity as without it, so the gain is not speaker invariance (docs/benchmarks.md).
    speaker_adversarial: float = 0.5
    time_masks: int = 2  # SpecAugment: time spans zeroed per training utterance ...
    time_mask_fraction: float = 0.1  # ... each up to this share of its length
    feature_masks: int = 4  # feature bands zeroed per utterance (run M: 0.882 against 0.876 for 2) ...
    feature_mask_width: int = 8  # ... each up to this many features wide
    # Training speech is also seen at these speeds (needs 1.0): tempo, pitch and formants move
    # together, as between speakers. 0.8-1.25 beat 0.85-1.17 on validation (0.914 against 0.899,
    # docs/benchmarks.md): the wider range covers more of the voices training never hears.
    speed_perturb: tuple[float, ...] = (0.8, 0.87, 0.93, 1.0, 1.07, 1.15, 1.25)
    fill_pairs: int = 4000  # training pairs replayed through the bank update rule
    # The replay's pairs: True, within-class pairs only, each remembered whatever S1 says
    # (training knows which pairs match, as a user confirming a result does); False, a mix of
    # within- and cross-class pairs that the rule's own S1 > T1 test lets in (the paper's reading).
    fill_by_label: bool = True
    fill_positive_fraction: float = 0.5  # share of within-class pairs in an S1-gated replay
    t1_grid: tuple[float, ...] = (0.5, 0.7, 0.9)  # T1 values tried on validation (S1-gated replay only)
    t2_grid: tuple[float, ...] = (0.3, 0.5, 0.7, 0.9)  # T2 values tried on validation
    averaging_grid: tuple[str, ...] = ("mean", "ema")  # slot averagings tried on validation
    soft_temperatures: tuple[float, ...] = (10.0, 20.0)  # 'soft' readouts tried beside 'max'
    selection_metric: str = "map"  # validation figure that chooses epoch and memory settings
    # What the figure is a mean over: 'family' (validation voice families, each one's figure),
    # 'speaker' (validation speakers) or 'clip' (utterances). Not utterances: validation is mostly
    # espeak-ng timbres, and one voice of another kind (slt, 24 of 200 utterances) would otherwise
    # barely count, though new kinds of voice are what the test and users bring (docs/benchmarks.md,
    # "How the shipped model was chosen"). Families rather than speakers, since whole families are
    # held out of training: a dozen timbres of one synthesizer should not outvote the other kinds.
    selection_by: str = "family"
    # Draw a class's training utterances so that each of its speakers is equally likely, rather
    # than each utterance: for data where some voices have far fewer recordings than others (the
    # built-in corpus deals its speech evenly over speakers, so there it changes nothing).
    balance_speakers: bool = False
    # Also try the average of the weights of the last N epochs (stochastic weight averaging,
    # Izmailov et al. 2018) as a candidate for the kept model: validation decides. 0: off.
    average_last: int = 15

    def __post_init__(self) -> None:
        if self.selection_by not in SELECTION_GROUPS:
            raise ValueError(f"selection_by must be one of {', '.join(SELECTION_GROUPS)}, got {self.selection_by!r}")
