"""Reading and writing speech audio: float32 mono waves at the models' 16 kHz rate.

Everything downstream (MFCCs, the corpus, the app's recorder) works on 1-D float32 arrays in
[-1, 1] at ``SAMPLE_RATE``; this module is the one place where files of other rates, channel
counts, sample formats and containers are brought to that form. libsndfile reads WAV, FLAC,
OGG and MP3 exactly and fast; anything else FFmpeg decodes (a phone's m4a/AAC memo, Opus, AMR,
WMA, the sound track of a video) goes through PyAV.
"""

from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

from fmn_core.media.errors import MediaError

SAMPLE_RATE = 16000


def read_audio(path: str | os.PathLike[str]) -> tuple[np.ndarray, int]:
    """Read an audio file at its own sample rate, downmixed to mono.

    Args:
        path: any audio file libsndfile or FFmpeg reads (WAV, FLAC, OGG, MP3, M4A/AAC, Opus,
            AMR, WMA, ...), or a video file, whose first audio track is read.

    Returns:
        ``(wave, sr)``: float32 samples, full scale ±1, of shape (N,), N > 0, and the file's rate.

    Raises:
        MediaError: the file is missing, empty, not audio, or holds no samples.
    """
    path = Path(path)
    if not path.is_file():
        raise MediaError(f"{path}: no such audio file")
    if path.stat().st_size == 0:
        raise MediaError(f"{path}: the audio file is empty (0 bytes)")
    try:
        data, sr = sf.read(path, dtype="float32", always_2d=True)
        wave = data.mean(axis=1, dtype=np.float32)
    except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
        wave, sr = _read_with_pyav(path, str(exc))
    if wave.shape[0] == 0:
        raise MediaError(f"{path}: the audio file holds no samples")
    if not np.isfinite(wave).all():
        raise MediaError(f"{path}: the audio file holds non-finite samples")
    return wave, int(sr)


def _read_with_pyav(path: Path, libsndfile_error: str) -> tuple[np.ndarray, int]:
    """Decode the first audio track with FFmpeg, downmixed to mono float32 at the track's rate."""
    import av  # only for files libsndfile cannot read: keeps av out of a plain WAV query's start

    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                kind = "a video without sound" if container.streams.video else "no audio track"
                raise MediaError(f"{path}: not a readable audio file ({kind})")
            stream = container.streams.audio[0]
            rate = stream.rate or stream.codec_context.sample_rate
            # Packed float mono at the track's own rate: resampling stays with resample() below.
            mono = av.AudioResampler(format="flt", layout="mono", rate=rate)
            chunks = [f.to_ndarray().reshape(-1) for frame in container.decode(stream) for f in mono.resample(frame)]
            chunks += [f.to_ndarray().reshape(-1) for f in mono.resample(None)]
    except MediaError:
        raise
    except (av.FFmpegError, OSError, UnicodeDecodeError, ValueError) as exc:
        raise MediaError(f"{path}: not a readable audio file (libsndfile: {libsndfile_error}; FFmpeg: {exc})") from exc
    wave = np.concatenate(chunks).astype(np.float32, copy=False) if chunks else np.zeros(0, np.float32)
    return wave, int(rate)


def load_audio(
    path: str | os.PathLike[str], sr: int = SAMPLE_RATE, segment: tuple[float, float | None] | None = None
) -> np.ndarray:
    """Read an audio file (or a ``(start, end)`` stretch of it, in seconds) as float32 mono at ``sr`` Hz.

    Args:
        path: any audio file :func:`read_audio` reads.
        sr: the rate wanted; the file is resampled with a polyphase filter when it differs.
        segment: a manifest row's segment (end None: to the file's end); None: the whole file.

    Returns:
        float32 samples in [-1, 1], shape (N,).

    Raises:
        MediaError: the file is missing, empty, not audio, or holds no samples (in the segment).
    """
    wave, file_sr = read_audio(path)
    if segment is not None:
        start, end = segment
        wave = wave[int(start * file_sr) : None if end is None else int(end * file_sr)]
        if len(wave) == 0:
            raise MediaError(f"{path}: no audio in the segment {start:g}–{end if end is not None else 'end'} s")
    # A float file may hold samples beyond full scale, and resampling can overshoot a little.
    clipped: np.ndarray = np.clip(resample(wave, file_sr, sr), -1.0, 1.0)
    return clipped


def resample(wave: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """Change a wave's sample rate with an anti-aliased polyphase filter.

    The same filter and alignment as ``scipy.signal.resample_poly`` (a Kaiser-windowed sinc,
    beta 5, 10 zero crossings per side), written with numpy: importing scipy.signal costs about
    1 s, which a query at 22.05 or 44.1 kHz would otherwise add to `fmn search`'s start.

    Args:
        wave: samples, shape (N,).
        sr_in: the wave's rate in Hz.
        sr_out: the rate wanted in Hz.

    Returns:
        float32 samples, shape (ceil(N * sr_out / sr_in),).
    """
    if sr_in <= 0 or sr_out <= 0:
        raise ValueError(f"sample rates must be positive, got {sr_in} -> {sr_out}")
    wave = np.asarray(wave, dtype=np.float32)
    if sr_in == sr_out:
        return wave
    g = math.gcd(int(sr_in), int(sr_out))
    return _resample_poly(wave, sr_out // g, sr_in // g).astype(np.float32, copy=False)


def _resample_poly(x: np.ndarray, up: int, down: int, chunk: int = 1 << 14) -> np.ndarray:
    """Upsample by ``up``, low-pass, downsample by ``down``, keeping the signal aligned (as resample_poly)."""
    n_in = len(x)
    n_out = -(-n_in * up // down)
    max_rate = max(up, down)
    half_len = 10 * max_rate
    taps = np.arange(2 * half_len + 1) - half_len
    h = np.sinc(taps / max_rate) / max_rate * np.kaiser(2 * half_len + 1, 5.0)
    h *= up / h.sum()  # unit gain at DC after zero-stuffing by `up`
    # Delay the filter so that output sample 0 lines up with input sample 0.
    n_pre_pad = down - half_len % down
    h = np.concatenate([np.zeros(n_pre_pad), h])
    first = (half_len + n_pre_pad) // down  # the first output sample kept
    t = np.arange(first, first + n_out) * down  # output n is sample t of the zero-stuffed, filtered signal
    x64 = np.asarray(x, np.float64)
    if up == 1:  # plain decimation: one convolution, then every down-th sample
        full = np.convolve(x64, h)
        return np.concatenate([full, np.zeros(max(0, int(t[-1]) + 1 - len(full)))])[t]
    # Polyphase: output n takes x[i_hi - k] * h[phase + k * up], phase = t % up, i_hi = t // up.
    n_taps = -(-len(h) // up)
    taps_flat = np.zeros(up * n_taps)
    taps_flat[: len(h)] = h
    table = taps_flat.reshape(n_taps, up).T  # table[phase, k] = h[phase + k * up]
    i_hi, phase = t // up, t % up
    right = max(0, int(i_hi[-1]) + 1 - n_in)
    padded = np.concatenate([np.zeros(n_taps), x64, np.zeros(right)])  # x[i] is padded[i + n_taps]
    k = np.arange(n_taps)
    y = np.empty(n_out)
    for start in range(0, n_out, chunk):  # bounded memory for long inputs
        sl = slice(start, start + chunk)
        y[sl] = np.einsum("ij,ij->i", padded[i_hi[sl, None] - k + n_taps], table[phase[sl]])
    return y


def write_wav(path: str | os.PathLike[str], wave: np.ndarray, sr: int = SAMPLE_RATE) -> None:
    """Write a wave as a 16-bit PCM WAV file, atomically.

    The samples go to a temporary file in the same folder, which then replaces ``path``, so a
    reader (or a crash) never sees a half-written file.

    Args:
        path: the file to write; missing folders are made.
        wave: samples in [-1, 1], shape (N,) or (N, channels); values beyond are clipped.
        sr: sample rate in Hz.

    Raises:
        MediaError: the file cannot be written.
    """
    path = Path(path)
    wave = np.clip(np.asarray(wave, dtype=np.float32), -1.0, 1.0)
    if wave.ndim not in (1, 2):
        raise ValueError(f"a wave is (N,) or (N, channels), got shape {wave.shape}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise MediaError(f"{path}: cannot write audio here ({exc.strerror})") from exc
    try:
        with os.fdopen(fd, "wb") as f:
            sf.write(f, wave, sr, subtype="PCM_16", format="WAV")
        os.chmod(tmp, 0o644)  # mkstemp makes owner-only files; a library's audio is for everyone to read
        os.replace(tmp, path)
    except (OSError, sf.LibsndfileError) as exc:
        Path(tmp).unlink(missing_ok=True)
        raise MediaError(f"{path}: cannot write audio ({exc})") from exc
