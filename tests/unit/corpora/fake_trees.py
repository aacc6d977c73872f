"""Miniature copies of the real corpus trees, with tiny WAVs, for the loader tests.

Each builder documents what its tree holds so the tests can assert exact counts.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

CASIA_SPEAKERS = ("liuchanhg", "wangzhe", "zhaoquanyin", "ZhaoZuoxiang")
CASIA_EMOTIONS = ("angry", "fear", "happy", "neutral", "sad", "surprise")


def write_wav(
    path: Path, seconds: float = 0.05, sr: int = 16000, subtype: str = "PCM_16"
) -> Path:
    """A short quiet sine (``seconds`` may be 0 for a header-only file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    n = int(round(seconds * sr))
    t = np.arange(n, dtype=np.float32) / sr
    sf.write(str(path), (0.01 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), sr,
             subtype=subtype)
    return path


def write_garbage(path: Path) -> Path:
    """A .wav whose header soundfile cannot read (no data chunk)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunkjunkjunk")
    return path


def write_appledouble(path: Path) -> Path:
    """A macOS ``._name`` resource-fork file: binary junk that is no audio or text."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        \xff\xfe\x00")
    return path


# --------------------------------------------------------------------------- CASIA
def make_casia_tree(parent: Path, *, per_folder: int = 2) -> Path:
    """``<parent>/CASIA database/<speaker>/<emotion>/<n>.wav``: 4 × 6 × ``per_folder``.

    Also a ``.DS_Store`` and a ``._201.wav`` that must be ignored.
    """
    root = parent / "CASIA database"
    for s in CASIA_SPEAKERS:
        for e in CASIA_EMOTIONS:
            for i in range(per_folder):
                write_wav(root / s / e / f"{201 + i}.wav")
    (root / ".DS_Store").write_bytes(b"\x00\x00")
    write_appledouble(root / "wangzhe" / "angry" / "._201.wav")
    return root


def make_casia_flat_tree(parent: Path, *, per_folder: int = 2) -> Path:
    """``<parent>/casia flat/<emotion>/<n>-<emotion>-<speaker>.wav``: 4 × 6 × ``per_folder``.

    Plus two files to skip: ``angry/readme.wav`` (no speaker in the name) and
    ``sad/201-happy-wangzhe.wav`` (name and folder disagree).
    """
    root = parent / "casia flat"
    for e in CASIA_EMOTIONS:
        for s in CASIA_SPEAKERS:
            for i in range(per_folder):
                write_wav(root / e / f"{201 + i}-{e}-{s}.wav")
    write_wav(root / "angry" / "readme.wav")
    write_wav(root / "sad" / "201-happy-wangzhe.wav")
    return root


# --------------------------------------------------------------------------- IEMOCAP
_IEMOCAP_HEADER = "% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]\n\n"

# dialog -> [(utterance, label, has_wav)]
IEMOCAP_DIALOGS: dict[int, dict[str, list[tuple[str, str, bool]]]] = {
    1: {
        "Ses01F_impro01": [
            ("Ses01F_impro01_F000", "neu", True),
            ("Ses01F_impro01_F001", "exc", True),   # -> hap in 4 classes
            ("Ses01F_impro01_M000", "ang", True),   # speaker 1M, not 1F
            ("Ses01F_impro01_M001", "fru", True),   # dropped in 4 classes
            ("Ses01F_impro01_M002", "xxx", True),   # always dropped
            ("Ses01F_impro01_F002", "hap", True),
        ],
        "Ses01F_script01_1": [
            ("Ses01F_script01_1_F000", "sad", True),
            ("Ses01F_script01_1_M000", "sur", True),  # dropped
            ("Ses01F_script01_1_M001", "neu", False),  # labelled, wav missing -> skipped
        ],
    },
    2: {
        "Ses02M_impro02": [
            ("Ses02M_impro02_F000", "hap", True),
            ("Ses02M_impro02_M000", "sad", True),
            ("Ses02M_impro02_M001", "exc", True),
        ],
    },
}


def make_iemocap_tree(parent: Path) -> Path:
    """Two sessions of IEMOCAP as in :data:`IEMOCAP_DIALOGS`.

    4 classes: 8 utterances (neu 1, hap 4, ang 1, sad 2), subjects 1F 1M 2F 2M, 1 skipped.
    6 classes: 9 utterances (neu 1, hap 2, ang 1, sad 2, exc 2, fru 1), 1 skipped.
    Label files carry the ``%`` header, blank lines and evaluator lines; there are
    ``._*`` files next to a label file and a wav, and a Categorical/ sub-folder.
    """
    root = parent / "IEMOCAP_full_release"
    for session, dialogs in IEMOCAP_DIALOGS.items():
        sdir = root / f"Session{session}"
        eval_dir = sdir / "dialog" / "EmoEvaluation"
        eval_dir.mkdir(parents=True, exist_ok=True)
        for dialog, utts in dialogs.items():
            lines = [_IEMOCAP_HEADER]
            t = 1.0
            for utt, label, has_wav in utts:
                lines.append(f"[{t:.4f} - {t + 2.1234:.4f}]\t{utt}\t{label}\t[2.5000, 3.0000, 2.5000]\n")
                lines.append("C-E1:\tNeutral state;\t()\n")
                lines.append(f"C-E2:\tFrustration;\t({label})\n")
                lines.append("A-E2:\tval 3; act 2; dom  2;\t()\n")
                lines.append("A-F1:\tval 2; act 3; dom  3;\t()\n\n")
                t += 3.0
                if has_wav:
                    write_wav(sdir / "sentences" / "wav" / dialog / f"{utt}.wav")
            (eval_dir / f"{dialog}.txt").write_text("".join(lines), encoding="utf-8")
        # an evaluator's own file in a sub-folder: not a consensus label file
        cat = eval_dir / "Categorical" / f"{next(iter(dialogs))}_e1_cat.txt"
        cat.parent.mkdir(parents=True, exist_ok=True)
        cat.write_text("Ses01F_impro01_F000 :Anger; ()\n", encoding="utf-8")
    write_appledouble(root / "Session1" / "dialog" / "EmoEvaluation" / "._Ses01F_impro01.txt")
    write_appledouble(
        root / "Session1" / "sentences" / "wav" / "Ses01F_impro01" / "._Ses01F_impro01_F000.wav")
    return root


# --------------------------------------------------------------------------- MODMA
MODMA_SHEET = "subjects_information_audio_lanzhou_2015.xlsx"
MODMA_HEADER = [" subject id", "type ", "age", "gender", "education（years）", "PHQ-9",
                "CTQ-SF", "LES", "SSRS", "GAD-7", "PSQI", None, None]


def write_modma_sheet(root: Path, rows: list[list], *, header=MODMA_HEADER,
                      sheet: str = "Sheet1") -> Path:
    import openpyxl

    book = openpyxl.Workbook()
    ws = book.active
    ws.title = sheet
    ws.append(list(header))
    for row in rows:
        ws.append(list(row))
    path = root / MODMA_SHEET
    book.save(path)
    return path


def _modma_wav(path: Path) -> Path:
    # The release: 44.1 kHz, 24-bit, very quiet.
    return write_wav(path, seconds=0.02, sr=44100, subtype="PCM_24")


def make_modma_tree(parent: Path) -> Path:
    """MODMA with five sheet subjects and one stray folder.

    - 02010002 MDD (id stored as number 2010002): 01..29 → 29; also ``._01.wav`` (ignored)
      and ``30.wav`` (skipped: not a recording).
    - 02020010 HC (stored as float 2020010.0): 01..29, but 05 unreadable and 07 has
      0 frames → 27 utterances, 2 skipped.
    - 02010015 HC — the 0201 prefix would say MDD, the sheet says HC: 01, 19, 20, 26 → 4.
    - 02020020 MDD: no folder → skipped.
    - 02010030 MDD: only an unreadable 01.wav → 1 file skipped + subject skipped.
    - folder 02099999 not in the sheet → skipped.

    Totals: 60 utterances, 3 subjects, HC 31, MDD 29, 7 skipped.
    """
    root = parent / "MODMA" / "audio_lanzhou_2015"
    root.mkdir(parents=True)
    write_modma_sheet(root, [
        [2010002, "MDD", 25, "M", 16, 18, 60, 10, 30, 12, 14, None, None],
        [2020010.0, "HC", 31, "F", 19, 2, 40, 3, 40, 1, 4, None, None],
        [2010015, " HC", 28, "F", 12.5, 3, None, 5, 38, 2, 5, None, None],
        [2020020, "MDD", 40, "M", 9, 20, 70, 12, 25, 15, 16, None, None],
        [2010030, "MDD", 22, "F", 15, 17, 55, 8, 28, 11, 12, None, None],
        [None, None, None, None, None, None, None, None, None, None, None, None, None],
    ])
    for i in range(1, 30):
        _modma_wav(root / "02010002" / f"{i:02d}.wav")
    write_appledouble(root / "02010002" / "._01.wav")
    _modma_wav(root / "02010002" / "30.wav")
    for i in range(1, 30):
        if i == 5:
            write_garbage(root / "02020010" / "05.wav")
        elif i == 7:
            write_wav(root / "02020010" / "07.wav", seconds=0, sr=44100, subtype="PCM_24")
        else:
            _modma_wav(root / "02020010" / f"{i:02d}.wav")
    for i in (1, 19, 20, 26):
        _modma_wav(root / "02010015" / f"{i:02d}.wav")
    write_garbage(root / "02010030" / "01.wav")
    _modma_wav(root / "02099999" / "01.wav")
    return root


# --------------------------------------------------------------------------- DAIC-WOZ
DAIC_TRANSCRIPT = [
    # start, stop, speaker, value
    (0.00, 0.90, "Ellie", "<sync>"),
    (1.00, 2.00, "Participant", "<sync>"),
    (2.10, 3.90, "Ellie", "hi i'm ellie thanks for coming in today"),
    (4.10, 6.30, "Participant", "hello there"),          # kept: 2.2 s
    (6.50, 7.00, "Participant", "yeah"),                 # 0.5 s: dropped at min 1.0
    (7.10, 8.00, "Participant", "<synch>"),
    (8.10, 9.60, "Participant", "[sync]"),
    (9.70, 10.80, "Participant", ""),
    (11.00, 13.50, "Participant", "i'm fine thanks"),    # kept, clipped to the 12.5 s wav
]
DAIC_WAV_SECONDS = 12.5


def write_daic_participant(root: Path, pid: int, *, transcript=DAIC_TRANSCRIPT) -> Path:
    folder = root / f"{pid}_P"
    write_wav(folder / f"{pid}_AUDIO.wav", seconds=DAIC_WAV_SECONDS, sr=16000)
    lines = ["start_time\tstop_time\tspeaker\tvalue"]
    lines += [f"{a:.3f}\t{b:.3f}\t{s}\t{v}" for a, b, s, v in transcript]
    (folder / f"{pid}_TRANSCRIPT.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def make_daic_tree(parent: Path) -> Path:
    """DAIC-WOZ with participants 300, 301 (train), 302 (dev), 303 (test).

    Labels: 300 not depressed (PHQ8 3, gender 1), 301 depressed (15, 0), 302 not (5, 1),
    303 depressed (PHQ_Binary 1, PHQ_Score 12, gender 0). Each transcript gives 2 kept
    turns at min_turn_seconds=1.0 ((4.1, 6.3) and (11.0, 12.5)), 3 at 0.4.
    Also: 304 in the dev split without a folder, folder 399_P in no split → 2 skipped.
    Totals: 8 utterances, 4 subjects, 4 per class.
    """
    root = parent / "DAIC-WOZ"
    root.mkdir(parents=True)
    (root / "train_split_Depression_AVEC2017.csv").write_text(
        "Participant_ID,PHQ8_Binary,PHQ8_Score,Gender,PHQ8_NoInterest,PHQ8_Depressed\n"
        "300,0,3,1,0,1\n301,1,15,0,2,2\n", encoding="utf-8")
    (root / "dev_split_Depression_AVEC2017.csv").write_text(
        "Participant_ID,PHQ8_Binary,PHQ8_Score,Gender,PHQ8_NoInterest\n"
        "302,0,5,1,0\n304,1,20,0,3\n", encoding="utf-8")
    (root / "full_test_split.csv").write_text(
        "Participant_ID,PHQ_Binary,PHQ_Score,Gender\n303,1,12,0\n", encoding="utf-8")
    for pid in (300, 301, 302, 303, 399):
        write_daic_participant(root, pid)
    return root


# --------------------------------------------------------------------------- folder
def make_folder_tree(parent: Path) -> Path:
    """A generic ``<root>/<label>/**/*.wav`` tree.

    happy/spk1/a.wav, happy/spk2/b.wav, happy/spk2/deep/c.wav, sad/spk1/d.wav,
    sad/e_spk3.wav (directly in its label folder), sad/._f.wav (ignored),
    loose.wav (outside any label: skipped), notes.txt (ignored).
    auto subjects: spk1, spk2, deep, e_spk3 → 5 utterances, happy 3, sad 2.
    """
    root = parent / "my corpus"
    write_wav(root / "happy" / "spk1" / "a.wav")
    write_wav(root / "happy" / "spk2" / "b.wav")
    write_wav(root / "happy" / "spk2" / "deep" / "c.wav")
    write_wav(root / "sad" / "spk1" / "d.wav")
    write_wav(root / "sad" / "e_spk3.wav")
    write_appledouble(root / "sad" / "._f.wav")
    write_wav(root / "loose.wav")
    (root / "notes.txt").write_text("not audio\n", encoding="utf-8")
    return root


# --------------------------------------------------------------------------- EMODB
EMODB_SPEAKERS = ("03", "08", "09", "10", "11", "12", "13", "14", "15", "16")
EMODB_TEXTS = ("a01", "a02", "a04", "a05", "a07", "b01", "b02", "b03", "b09", "b10")
EMODB_LETTERS = ("W", "L", "E", "A", "F", "T", "N")


def make_emodb_tree(parent: Path) -> Path:
    """``<parent>/emodb/wav/<speaker><text><emotion><version>.wav`` as released, 16 kHz.

    Each speaker (the i-th) speaks text ``EMODB_TEXTS[i]`` once per emotion letter, version
    ``a`` (70 files), and ``03a01Fb.wav`` is a second version → 71 utterances, 10 subjects
    (03 has 8, the others 7), 10 per class and happy 11. Skipped (4): ``03a01Xa.wav``
    (emotion X), ``07a01Wa.wav`` (speaker 07), ``03c01Wa.wav`` (text c01), ``readme.wav``
    (no code). Ignored: ``._03a01Fa.wav``, ``.DS_Store``, ``silb/``, ``erkennung.txt``.
    """
    root = parent / "emodb"
    wav = root / "wav"
    for i, speaker in enumerate(EMODB_SPEAKERS):
        for letter in EMODB_LETTERS:
            write_wav(wav / f"{speaker}{EMODB_TEXTS[i]}{letter}a.wav", sr=16000)
    write_wav(wav / "03a01Fb.wav", sr=16000)
    for name in ("03a01Xa.wav", "07a01Wa.wav", "03c01Wa.wav", "readme.wav"):
        write_wav(wav / name, sr=16000)
    write_appledouble(wav / "._03a01Fa.wav")
    (wav / ".DS_Store").write_bytes(b"\x00\x00")
    (root / "silb").mkdir()
    (root / "silb" / "03a01Fa.silb").write_text("0.1 der\n", encoding="latin-1")
    (root / "erkennung.txt").write_text("03a01Fa 90.0\n", encoding="latin-1")
    return root


# --------------------------------------------------------------------------- EMOVO
EMOVO_ACTORS = ("f1", "f2", "f3", "m1", "m2", "m3")
EMOVO_CODES = ("dis", "gio", "neu", "pau", "rab", "sor", "tri")


def make_emovo_tree(parent: Path) -> Path:
    """``<parent>/EMOVO/<actor>/<emotion>-<actor>-<sentence>.wav`` as released, 48 kHz.

    6 actors × 7 emotions × sentences b1, n5 → 84 utterances, 14 per actor, 12 per class.
    Skipped (5): ``f1/xxx-f1-b1.wav`` (emotion xxx), ``f2/dis-f2-z9.wav`` (sentence z9),
    ``m1/dis-f2-b1.wav`` (actor f2 in folder m1), ``f1/dis_f1_b1.wav`` (no code),
    ``f4/dis-f4-b1.wav`` (actor f4). Ignored: ``documents/``, ``f1/._dis-f1-b1.wav``.
    """
    root = parent / "EMOVO"
    for actor in EMOVO_ACTORS:
        for code in EMOVO_CODES:
            for sentence in ("b1", "n5"):
                write_wav(root / actor / f"{code}-{actor}-{sentence}.wav", sr=48000)
    for rel in ("f1/xxx-f1-b1.wav", "f2/dis-f2-z9.wav", "m1/dis-f2-b1.wav",
                "f1/dis_f1_b1.wav", "f4/dis-f4-b1.wav"):
        write_wav(root / rel, sr=48000)
    write_appledouble(root / "f1" / "._dis-f1-b1.wav")
    (root / "documents").mkdir()
    (root / "documents" / "EMOVO.txt").write_text("EMOVO corpus\n", encoding="utf-8")
    write_wav(root / "documents" / "example.wav", sr=48000)
    return root


# --------------------------------------------------------------------------- SAVEE
SAVEE_SPEAKERS = ("DC", "JE", "JK", "KL")
SAVEE_FILES = ("a01", "a02", "d01", "f01", "h01", "n01", "n02", "n03", "sa01", "su01")


def make_savee_tree(parent: Path) -> Path:
    """``<parent>/SAVEE/AudioData/<speaker>/<emotion><nn>.wav`` as released, 44.1 kHz.

    4 speakers × :data:`SAVEE_FILES` → 40 utterances, 10 per speaker; angry 8, disgust 4,
    fear 4, happy 4, neutral 12, sad 4, surprise 4. Skipped (3): ``DC/x01.wav`` (prefix x),
    ``JE/a1.wav`` (no 2-digit number), ``AB/a01.wav`` (speaker AB). Ignored:
    ``AudioData/Info.txt``, ``DC/._a01.wav``.
    """
    root = parent / "SAVEE"
    audio = root / "AudioData"
    for speaker in SAVEE_SPEAKERS:
        for stem in SAVEE_FILES:
            write_wav(audio / speaker / f"{stem}.wav", sr=44100)
    for rel in ("DC/x01.wav", "JE/a1.wav", "AB/a01.wav"):
        write_wav(audio / rel, sr=44100)
    write_appledouble(audio / "DC" / "._a01.wav")
    (audio / "Info.txt").write_text("'DC', 'JE', 'JK' and 'KL' ...\n", encoding="utf-8")
    return root


# --------------------------------------------------------------------------- RAVDESS
RAVDESS_SPEECH_ACTORS = ("01", "02", "03", "04")
RAVDESS_SONG_ACTORS = ("01", "02")


def _ravdess_wav(folder: Path, channel: str, emotion: str, intensity: str, statement: str,
                 actor: str, *, modality: str = "03", repetition: str = "01") -> Path:
    name = f"{modality}-{channel}-{emotion}-{intensity}-{statement}-{repetition}-{actor}.wav"
    return write_wav(folder / name, sr=48000)


def make_ravdess_tree(parent: Path) -> Path:
    """RAVDESS audio-only, 48 kHz: speech in ``<parent>/RAVDESS/Actor_NN/`` (the zip as
    unpacked), song one level down in ``Audio_Song_Actors_01-24/Actor_NN/``.

    Speech, actors 01-04: neutral (normal, statements 01 and 02) + 7 emotions × 2
    intensities (statement 01) → 16 each, 64 in all, 8 per class, 28 strong.
    Song, actors 01-02: neutral (normal) + calm happy sad angry fearful × 2 intensities →
    11 each, 22 in all (neutral 2, the others 4), plus ``03-02-07-01-01-01-02.wav`` (a song
    with disgust: skipped as song, counted as disgust with ``vocal_channel="both"``).
    Skipped in every channel (4): ``Actor_01/03-01-09-...`` (emotion 09),
    ``Actor_01/01-01-05-...`` (full-AV), ``Actor_01/03-01-05-01-01-01-02.wav`` (actor 02 in
    Actor_01), ``Actor_02/notes.wav`` (no code). Skipped as speech or both: the second
    copy ``audio_speech_actors_01-24/Actor_01/03-01-05-01-01-01-01.wav``.
    So: speech 64 + 5 skipped; song 22 + 5 skipped; both 87 + 5 skipped.
    Ignored: ``._*``, an ``.mp4`` and ``README.txt``.
    """
    root = parent / "RAVDESS"
    for actor in RAVDESS_SPEECH_ACTORS:
        folder = root / f"Actor_{actor}"
        for statement in ("01", "02"):
            _ravdess_wav(folder, "01", "01", "01", statement, actor)
        for emotion in ("02", "03", "04", "05", "06", "07", "08"):
            for intensity in ("01", "02"):
                _ravdess_wav(folder, "01", emotion, intensity, "01", actor)
    for actor in RAVDESS_SONG_ACTORS:
        folder = root / "Audio_Song_Actors_01-24" / f"Actor_{actor}"
        _ravdess_wav(folder, "02", "01", "01", "01", actor)
        for emotion in ("02", "03", "04", "05", "06"):
            for intensity in ("01", "02"):
                _ravdess_wav(folder, "02", emotion, intensity, "01", actor)
    _ravdess_wav(root / "Audio_Song_Actors_01-24" / "Actor_02", "02", "07", "01", "01", "02")
    a1 = root / "Actor_01"
    _ravdess_wav(a1, "01", "09", "01", "01", "01")
    _ravdess_wav(a1, "01", "05", "01", "01", "01", modality="01")
    _ravdess_wav(a1, "01", "05", "01", "01", "02")
    write_wav(root / "Actor_02" / "notes.wav", sr=48000)
    _ravdess_wav(root / "audio_speech_actors_01-24" / "Actor_01", "01", "05", "01", "01", "01")
    write_appledouble(a1 / "._03-01-01-01-01-01-01.wav")
    (a1 / "01-01-01-01-01-01-01.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42")
    (root / "README.txt").write_text("RAVDESS\n", encoding="utf-8")
    return root
