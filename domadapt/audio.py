"""Reading audio with soundfile: mono float32, optional cut, clear errors.

torchaudio's own file I/O is deprecated upstream, so every read goes through here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from domadapt.errors import DomadaptError


def audio_info(path: str | Path) -> sf._SoundFileInfo:
    """Header of ``path``; raises DomadaptError naming the file if it cannot be read."""
    try:
        return sf.info(str(path))
    except Exception as exc:  # soundfile raises LibsndfileError / RuntimeError / OSError
        raise DomadaptError(f"{path}: unreadable audio file ({exc})") from exc


def read_audio(
    path: str | Path, start: float | None = None, end: float | None = None
) -> tuple[np.ndarray, int]:
    """Read ``path`` (optionally only ``[start, end)`` seconds) as mono float32.

    Stereo is down-mixed by averaging channels. Only the requested frames are read, so a
    45-minute DAIC-WOZ interview is never loaded whole to cut one turn out of it.
    Raises DomadaptError naming the file for unreadable, empty or non-finite audio.
    """
    info = audio_info(path)
    sr = int(info.samplerate)
    first = 0 if start is None else max(0, int(round(start * sr)))
    last = info.frames if end is None else min(info.frames, int(round(end * sr)))
    if info.frames == 0:
        raise DomadaptError(f"{path}: no audio (an empty file, 0 frames)")
    if last <= first:
        raise DomadaptError(
            f"{path}: no audio in [{start}, {end}) s (file has {info.frames} frames at {sr} Hz)"
        )
    try:
        data, sr = sf.read(str(path), start=first, stop=last, dtype="float32", always_2d=True)
    except Exception as exc:
        raise DomadaptError(f"{path}: unreadable audio file ({exc})") from exc
    if data.shape[0] == 0:
        raise DomadaptError(f"{path}: zero-length audio")
    wav = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    if not np.isfinite(wav).all():
        raise DomadaptError(f"{path}: audio contains NaN or inf samples")
    return np.ascontiguousarray(wav, dtype=np.float32), int(sr)
