"""What a loaded corpus holds: counts, durations, sample rates, what was skipped.

Backs ``domadapt data summary CORPUS ROOT [--json]``.
"""

from __future__ import annotations

import collections
import dataclasses
from typing import Any

from domadapt.audio import audio_info
from domadapt.corpora.base import Corpus
from domadapt.errors import DomadaptError


def summarize(corpus: Corpus, *, probe_audio: bool = True) -> dict[str, Any]:
    """A JSON-ready description of ``corpus``.

    Keys: ``corpus`` (name), ``root``, ``utterances`` (count), ``subjects`` (count),
    ``classes`` (label -> count, in class order), ``durations`` (``total``/``mean``/
    ``min``/``max`` seconds and ``known``, the number of utterances they cover),
    ``sample_rates`` (rate in Hz -> utterance count), ``skipped`` (list of
    ``{path, reason}``), ``synthetic``, ``probed``.

    Durations of cut utterances (``start``/``end``) come from the cut; the others from
    the file header, read only when ``probe_audio`` (each file once). Files whose header
    cannot be read while probing are added to ``skipped``. Without probing,
    ``sample_rates`` is empty and ``durations`` covers the cut utterances only.
    """
    headers: dict[str, Any] = {}
    unreadable: dict[str, str] = {}
    durations: list[float] = []
    rates: collections.Counter[int] = collections.Counter()
    for u in corpus.utterances:
        info = None
        if probe_audio:
            key = str(u.path)
            if key not in headers and key not in unreadable:
                try:
                    headers[key] = audio_info(u.path)
                except DomadaptError as exc:
                    unreadable[key] = str(exc)
            info = headers.get(key)
            if info is not None:
                rates[int(info.samplerate)] += 1
        if u.start is not None or u.end is not None:
            start = u.start or 0.0
            if u.end is not None:
                durations.append(max(0.0, u.end - start))
            elif info is not None and info.samplerate:
                durations.append(max(0.0, info.frames / info.samplerate - start))
        elif info is not None and info.samplerate:
            durations.append(info.frames / info.samplerate)

    # an utterance whose file cannot be read is no utterance of the corpus: counted as skipped only
    readable = [u for u in corpus.utterances if str(u.path) not in unreadable]
    counted = dataclasses.replace(corpus, utterances=readable)
    skipped = [{"path": s.path, "reason": s.reason} for s in corpus.skipped]
    skipped += [{"path": p, "reason": f"unreadable when probed: {r}"}
                for p, r in unreadable.items()]
    total = sum(durations)
    return {
        "corpus": corpus.name,
        "root": str(corpus.root),
        "utterances": len(counted.utterances),
        "subjects": len(counted.subjects()),
        "classes": counted.label_counts(),
        "durations": {
            "total": round(total, 3),
            "mean": round(total / len(durations), 3) if durations else None,
            "min": round(min(durations), 3) if durations else None,
            "max": round(max(durations), 3) if durations else None,
            "known": len(durations),
        },
        "sample_rates": dict(sorted(rates.items())),
        "skipped": skipped,
        "synthetic": bool(corpus.synthetic),
        "probed": probe_audio,
    }


def _seconds(value: float | None) -> str:
    if value is None:
        return "?"
    if value >= 3600:
        return f"{value / 3600:.2f} h"
    if value >= 60:
        return f"{value / 60:.1f} min"
    return f"{value:.2f} s"


def format_summary(d: dict[str, Any], *, max_skipped: int = 20) -> str:
    """Human-readable text for a :func:`summarize` dict (at most ``max_skipped`` listed)."""
    lines = [f"corpus {d['corpus']}" + ("  [SYNTHETIC stand-in data]" if d["synthetic"] else "")]
    if d.get("root"):
        lines.append(f"  root         {d['root']}")
    lines.append(f"  utterances   {d['utterances']}")
    lines.append(f"  subjects     {d['subjects']}")
    width = max((len(c) for c in d["classes"]), default=0)
    lines.append("  classes")
    for label, count in d["classes"].items():
        share = 100.0 * count / d["utterances"] if d["utterances"] else 0.0
        lines.append(f"    {label:<{width}}  {count:>7}  ({share:.1f}%)")
    dur = d["durations"]
    if dur["known"]:
        partial = "" if dur["known"] == d["utterances"] else f" ({dur['known']} utterances known)"
        lines.append(
            f"  duration     total {_seconds(dur['total'])}, mean {_seconds(dur['mean'])}, "
            f"min {_seconds(dur['min'])}, max {_seconds(dur['max'])}{partial}"
        )
    else:
        lines.append("  duration     unknown (audio not probed)")
    if d["sample_rates"]:
        rates = ", ".join(f"{rate} Hz × {n}" for rate, n in d["sample_rates"].items())
        lines.append(f"  sample rates {rates}")
    skipped = d["skipped"]
    lines.append(f"  skipped      {len(skipped)}")
    for s in skipped[:max_skipped]:
        lines.append(f"    {s['path']}: {s['reason']}")
    if len(skipped) > max_skipped:
        lines.append(f"    ... and {len(skipped) - max_skipped} more")
    return "\n".join(lines)
