"""The TTS voice catalogue: which engines and voices exist, which are usable here, and their families.

DESIGN.md §3 speaks every phrasing with many voices: espeak-ng dialects × variants, flite and
festival voices, Piper neural voices. This module lists the ones usable on this machine (each
program is asked which voices it has) and says how to install a missing engine; ``synthesis``
runs them.

Every voice belongs to a *family*, the unit a held-out split keeps whole: a synthesis method
(espeak-ng's formant voices, its Klatt voices, diphone concatenation, statistical parametric
voices, a neural voice). Families are drawn so that no recorded speaker is in two of them: kal
is a diphone voice in flite and in festival, slt a parametric one in both (flite's clustergen,
festival's HTS), so a split can hold a family out without hearing its speakers elsewhere.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from fmn_core.corpus import kokoro_engine, piper_engine
from fmn_core.errors import FmnError

LANGS = ("en", "zh")
ENGINE_TIMEOUT_S = 60  # a TTS program that has not answered by then is stuck


class SpeechError(FmnError):
    """A TTS engine that failed or produced silence; the message names engine, voice and text."""


@dataclass(frozen=True)
class Engine:
    """A TTS program and how to get it."""

    name: str  # the engine's key in voice ids: "espeak", "flite", "festival", "piper", "kokoro"
    program: str  # the executable run for synthesis; "" for an engine run in-process
    install: str  # one line telling a user how to install it
    langs: tuple[str, ...]  # languages its catalogue covers


@dataclass(frozen=True)
class Voice:
    """One voice of the catalogue: an engine, its own voice name, and the language it speaks."""

    id: str  # stable catalogue key "engine:name", e.g. "espeak:en-us+m3", "flite:slt"
    engine: str  # key of ENGINES
    lang: str  # "en" or "zh"
    name: str  # the engine's own name: "gmw/en-US+m3", "slt", "kal_diphone"
    speaker: str  # the timbre behind it: voices sharing one should not straddle train and test
    native_pitch: bool = True  # False: the engine ignores pitch settings; pitch is shifted by resampling
    family: str = ""  # the voice family a held-out split keeps whole (see FAMILIES)


ENGINES: dict[str, Engine] = {
    e.name: e
    for e in (
        Engine("espeak", "espeak-ng", "apt-get install espeak-ng", ("en", "zh")),
        Engine("flite", "flite", "apt-get install flite", ("en",)),
        Engine(
            "festival",
            "text2wave",
            "apt-get install festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts",
            ("en",),
        ),
        Engine("piper", "", piper_engine.INSTALL, ("en",)),
        Engine("kokoro", "", kokoro_engine.INSTALL, ("zh",)),
    )
}
# What an in-process engine (no program to find) lacks here, None when it can run.
_IN_PROCESS_MISSING: dict[str, Callable[[], str | None]] = {
    "piper": piper_engine.missing,
    "kokoro": kokoro_engine.missing,
}

# The voice families and what each is. Mandarin has two engines, espeak-ng's cmn and Kokoro, and
# its families are their voice lines (male timbres, female timbres, Klatt): a Mandarin split holds
# out new voice lines of engines that training hears, never a whole new engine.
FAMILIES = {
    "espeak": "espeak-ng formant voices, male and female timbres (m1-m7, f1-f4), every English dialect",
    "espeak-klatt": "espeak-ng's Klatt synthesizer voices (klatt, klatt2, klatt3), every English dialect",
    "diphone": "diphone concatenation of recorded speech: flite kal, kal16; festival kal, ked (rab, don)",
    "parametric": "statistical parametric voices: flite clustergen awb, rms, slt; festival HTS slt",
    "piper": "Piper neural (VITS) voices: joe",
    "espeak-zh-m": "espeak-ng Mandarin, male timbres m1-m7",
    "espeak-zh-f": "espeak-ng Mandarin, female timbres f1-f4",
    "espeak-zh-klatt": "espeak-ng Mandarin, Klatt voices",
    "kokoro-zh-f": "Kokoro-82M neural voices speaking Mandarin, female: jf_alpha, gongitsune, nezumi, tebukuro",
    "kokoro-zh-m": "Kokoro-82M neural voice speaking Mandarin, male: jm_kumo",
}

# Variants are espeak-ng's timbres (a dialect changes only pronunciation); these are its natural-
# sounding ones, the rest of its list being novelty voices (robots, whispers, characters).
_ESPEAK_VARIANTS = ("m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "klatt", "klatt2", "klatt3")
# espeak-ng 1.51's "cmn" spells the pinyin of Han characters with English letter rules; only voices
# that say this probe without switching to English ("(en)" in the phonemes) count as Mandarin.
_ESPEAK_ZH_CANDIDATES = ("cmn", "cmn-latn-pinyin")
_ZH_PROBE = "切洋葱"
# flite's clustergen voice rms ignores f0_shift (measured), so its pitch is shifted by resampling.
_FLITE_FIXED_F0 = frozenset({"rms"})
_FESTIVAL_VOICE_ROOTS = (Path("/usr/share/festival/voices"), Path("/usr/local/share/festival/voices"))
_FESTIVAL_EN_FOLDERS = frozenset({"english", "us", "british"})
# The same recorded speaker packaged for several engines or rates.
_SPEAKER_ALIASES = {
    "kal16": "kal",
    "kal_diphone": "kal",
    "ked_diphone": "ked",
    "rab_diphone": "rab",
    "don_diphone": "don",
    "cmu_us_slt_arctic_hts": "slt",
}
# flite's diphone voices; its others (awb, rms, slt) are clustergen, a statistical parametric method.
_FLITE_DIPHONE = frozenset({"kal", "kal16"})


def run_engine(cmd: list[str], stdin: str | None = None) -> subprocess.CompletedProcess[bytes]:
    """Run a program without a shell; UTF-8 text on stdin, output captured.

    Shared by voice detection here and by ``synthesis``, so both run the engines the same way.
    """
    data = stdin.encode("utf-8") if stdin is not None else None
    return subprocess.run(cmd, input=data, capture_output=True, timeout=ENGINE_TIMEOUT_S, check=False)


def _probe(cmd: list[str], stdin: str | None = None) -> str:
    """Stdout of a detection command, or "" when it cannot run: detection never raises."""
    try:
        done = run_engine(cmd, stdin)
    except (OSError, subprocess.SubprocessError):
        return ""
    return done.stdout.decode("utf-8", "replace") if done.returncode == 0 else ""


@functools.cache
def _espeak_variants() -> tuple[str, ...]:
    listing = _probe(["espeak-ng", "--voices=variant"])
    files = {cols[4] for cols in (line.split() for line in listing.splitlines()[1:]) if len(cols) >= 5}
    return tuple(v for v in _ESPEAK_VARIANTS if f"!v/{v}" in files)


@functools.cache
def _espeak_dialects(query: str) -> dict[str, str]:
    """espeak-ng's own voices for a language query: language code -> voice file, e.g. en-gb -> gmw/en."""
    dialects: dict[str, str] = {}
    for cols in (line.split() for line in _probe(["espeak-ng", f"--voices={query}"]).splitlines()[1:]):
        # mb/ voices need the separate MBROLA synthesizer and its databases.
        if len(cols) >= 5 and not cols[4].startswith("mb/") and cols[4] not in dialects.values():
            dialects.setdefault(cols[1], cols[4])
    return dialects


def _speaks_mandarin(voice_file: str) -> bool:
    phonemes = _probe(["espeak-ng", "-q", "-x", "-b", "1", "--stdin", "-v", voice_file], _ZH_PROBE)
    return bool(phonemes.strip()) and "(en)" not in phonemes


@functools.cache
def _espeak_voices() -> tuple[Voice, ...]:
    if shutil.which(ENGINES["espeak"].program) is None:
        return ()
    en = [("en", code, file) for code, file in _espeak_dialects("en").items() if code.startswith("en")]
    zh = [
        ("zh", code, file)
        for code, file in _espeak_dialects("cmn").items()
        if code in _ESPEAK_ZH_CANDIDATES and _speaks_mandarin(file)
    ]
    # Voices are named by file: espeak-ng 1.51 drops a variant appended to a language alias
    # ("en-gb+f2" sounds like plain en-gb), but not one appended to the file ("gmw/en+f2").
    return tuple(
        Voice(f"espeak:{code}+{v}", "espeak", lang, f"{file}+{v}", f"espeak+{v}", family=_espeak_family(lang, v))
        for lang, code, file in sorted(en + zh)
        for v in _espeak_variants()
    )


def _espeak_family(lang: str, variant: str) -> str:
    line = "klatt" if variant.startswith("klatt") else variant[0]  # "m", "f" or "klatt"
    if lang == "zh":
        return f"espeak-zh-{line}"
    return "espeak-klatt" if line == "klatt" else "espeak"


@functools.cache
def _flite_voices() -> tuple[Voice, ...]:
    listing = _probe(["flite", "-lv"])
    names = listing.partition(":")[2].split()
    # *_time voices are limited-domain: they can only say the time of day.
    return tuple(
        Voice(
            f"flite:{n}",
            "flite",
            "en",
            n,
            _SPEAKER_ALIASES.get(n, n),
            native_pitch=n not in _FLITE_FIXED_F0,
            family="diphone" if n in _FLITE_DIPHONE else "parametric",
        )
        for n in sorted(names)
        if not n.endswith("_time")
    )


def festival_has_pitch_handle(name: str) -> bool:
    """Whether festival can scale this voice's pitch (``synthesis`` writes the Scheme that does).

    Diphone voices can, through their f0 targets. Festival 2.5's HTS front end passes only -m and
    -r to the engine (no half-tone shift), so HTS voices have no pitch handle; other voice types
    have no known one.
    """
    return name.endswith("_diphone")


def _festival_voice_names() -> list[str]:
    """Installed festival voices: <root>/<language folder>/<name>/festvox/<name>.scm."""
    return sorted(
        {
            scm.stem
            for root in _FESTIVAL_VOICE_ROOTS
            for scm in root.glob("*/*/festvox/*.scm")
            if scm.stem == scm.parent.parent.name and scm.parent.parent.parent.name in _FESTIVAL_EN_FOLDERS
        }
    )


@functools.cache
def _festival_voices() -> tuple[Voice, ...]:
    if shutil.which(ENGINES["festival"].program) is None:
        return ()
    return tuple(
        Voice(
            f"festival:{n}",
            "festival",
            "en",
            n,
            _SPEAKER_ALIASES.get(n, n),
            native_pitch=festival_has_pitch_handle(n),
            family=_festival_family(n),
        )
        for n in _festival_voice_names()
    )


def _festival_family(name: str) -> str:
    if name.endswith("_diphone"):
        return "diphone"
    if name.endswith("_hts"):
        return "parametric"
    # Unit-selection (clunits, multisyn) voices are a method of their own.
    return f"festival-{name}"


@functools.cache
def _piper_voices() -> tuple[Voice, ...]:
    # Piper's VITS takes no pitch setting; pitch is shifted by resampling.
    return tuple(
        Voice(f"piper:{m.name}", "piper", m.lang, m.name, m.name, native_pitch=False, family="piper")
        for m in piper_engine.installed_models()
    )


@functools.cache
def _kokoro_voices() -> tuple[Voice, ...]:
    # Kokoro takes a speed but no pitch; pitch is shifted by resampling.
    return tuple(
        Voice(f"kokoro:{v.name}", "kokoro", "zh", v.name, v.name, native_pitch=False, family=f"kokoro-zh-{v.line}")
        for v in kokoro_engine.installed_voices()
    )


_CATALOGUES: dict[str, Callable[[], tuple[Voice, ...]]] = {
    "espeak": _espeak_voices,
    "flite": _flite_voices,
    "festival": _festival_voices,
    "piper": _piper_voices,
    "kokoro": _kokoro_voices,
}


@functools.cache
def engine_status() -> dict[str, str | None]:
    """Which TTS engines are usable here.

    Returns:
        engine name -> None when it is installed and has voices, else a one-line how-to-install.
    """
    status: dict[str, str | None] = {}
    for name, engine in ENGINES.items():
        what = engine.program or name
        if engine.program and shutil.which(engine.program) is None:
            status[name] = f"{engine.program} not found: {engine.install}"
        elif not engine.program and (lack := _IN_PROCESS_MISSING[name]()):
            status[name] = lack
        elif not _CATALOGUES[name]():
            status[name] = f"{what} has no usable voices: {engine.install}"
        else:
            status[name] = None
    return status


def voices(lang: str) -> list[Voice]:
    """The usable voices of a language on this machine, sorted by id.

    Args:
        lang: "en" or "zh".

    Raises:
        ValueError: an unknown language.
    """
    if lang not in LANGS:
        raise ValueError(f"unknown language {lang!r}: valid languages are {', '.join(LANGS)}")
    return sorted((v for catalogue in _CATALOGUES.values() for v in catalogue() if v.lang == lang), key=lambda v: v.id)


def find_voice(voice_id: str) -> Voice:
    """The catalogue voice with this id (as stored in a manifest's ``voice`` column).

    Raises:
        SpeechError: no usable voice has that id; the message says what its engine needs.
    """
    for catalogue in _CATALOGUES.values():
        for voice in catalogue():
            if voice.id == voice_id:
                return voice
    engine = voice_id.partition(":")[0]
    if engine not in ENGINES:
        raise SpeechError(f"unknown voice {voice_id!r}: voice ids start with one of {', '.join(ENGINES)}")
    hint = engine_status()[engine] or f"{engine} is installed but has no such voice"
    raise SpeechError(f"unknown voice {voice_id!r}: {hint}")
