"""domadapt.progress: a bar on a terminal, plain periodic lines in a log, nothing when quiet;
and the slow steps that report through it."""

import io

from domadapt.corpora import load_corpus
from domadapt.corpora.synthetic import write_casia
from domadapt.features import FeatureConfig, extract_segments
from domadapt.progress import Progress, clock


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_log_lines_every_interval_and_one_at_the_end():
    log = io.StringIO()
    with Progress(4, "modma: features", unit="utterances", stream=log, every_s=0.0) as bar:
        for i in range(4):
            bar.update(skipped=i // 2)
    lines = log.getvalue().splitlines()
    # a line after each of the first three items (interval 0), none for the last: the closing line says it
    assert [line.split(",")[0] for line in lines] == [
        "modma: features: 1/4 utterances (25%)", "modma: features: 2/4 utterances (50%)",
        "modma: features: 3/4 utterances (75%)", "modma: features: 4/4 utterances (100%)",
    ]
    assert "about" in lines[0] and "left" in lines[0] and "left" not in lines[-1]
    assert lines[-1].endswith("skipped 1") and "utterances/s" in lines[-1]


def test_long_interval_writes_only_the_closing_line():
    log = io.StringIO()
    bar = Progress(1000, "synthetic modma", unit="files", stream=log, every_s=3600.0)
    for _ in bar.track(range(1000)):
        pass
    assert log.getvalue().count("\n") == 1 and log.getvalue().startswith("synthetic modma: 1000/1000 files")


def test_quiet_writes_nothing():
    log = Terminal()
    with Progress(3, "x", stream=log, enabled=False, every_s=0.0) as bar:
        bar.update(3)
    assert log.getvalue() == ""


def test_terminal_gets_a_tqdm_bar_and_no_plain_lines():
    term = Terminal()
    with Progress(5, "units", unit="units", stream=term, every_s=0.0) as bar:
        bar.above(lambda text: term.write(text + "\n"))("a result line")
        bar.update(5)
    out = term.getvalue()
    assert "\r" in out and "5/5" in out  # tqdm redraws in place
    assert "a result line\n" in out
    assert "units: 5/5 units (100%)" not in out  # the plain line format is for logs only


def test_track_counts_continues_and_closes_on_break():
    log = io.StringIO()
    bar = Progress(10, "x", stream=log, every_s=3600.0)
    for i in bar.track(range(10)):
        if i % 2:
            continue
        if i == 6:
            break
    assert bar.done == 6 and not bar.enabled  # 0..5 finished; closed by the break
    assert log.getvalue().startswith("x: 6/10 items (60%)")


def test_clock():
    assert [clock(s) for s in (0, 61.4, 3599, 3600 + 62)] == ["0:00", "1:01", "59:59", "1:01:02"]


def test_synthetic_generation_counts_its_files(tmp_path, capsys):
    write_casia(tmp_path / "CASIA database", files_per_class=1, progress=True)
    # the closing line (on a slow machine a periodic one may come first)
    assert capsys.readouterr().err.splitlines()[-1].startswith("synthetic casia: 24/24 files (100%)")


def test_extraction_reports_rate_and_skipped(tmp_path, capsys):
    root = write_casia(tmp_path / "CASIA database", files_per_class=1)
    (root / "wangzhe" / "sad" / "999.wav").write_bytes(b"not audio")
    extract_segments(load_corpus("casia", root), FeatureConfig(), cache_dir=False, progress=True)
    line = capsys.readouterr().err.splitlines()[-1]
    assert line.startswith("casia: features: 25/25 utterances (100%)")
    assert "utterances/s" in line and line.endswith("skipped 1")


def test_no_progress_no_output(tmp_path, capsys):
    root = write_casia(tmp_path / "CASIA database", files_per_class=1)
    extract_segments(load_corpus("casia", root), FeatureConfig(), cache_dir=False)
    assert "features:" not in capsys.readouterr().err


def test_a_pseudo_terminal_of_no_size_gets_plain_lines():
    import fcntl
    import os
    import pty
    import struct
    import termios

    main_fd, sub_fd = pty.openpty()  # as under `script` or `ssh` with no terminal: 0 x 0
    with os.fdopen(sub_fd, "w") as stream:
        try:
            assert Progress(3, "x", stream=stream).bar is None
            fcntl.ioctl(sub_fd, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))  # a real window
            bar = Progress(3, "x", stream=stream)
            assert bar.bar is not None
            bar.close()
        finally:
            os.close(main_fd)


def test_without_log_lines_only_a_terminal_shows_anything():
    log, term = io.StringIO(), Terminal()
    for stream in (log, term):
        with Progress(2, "units", stream=stream, every_s=0.0, log_lines=False) as bar:
            bar.update(2)
    assert log.getvalue() == "" and "2/2" in term.getvalue()


def test_time_left_counts_the_items_under_way_at_once(monkeypatch):
    """Two workers, ten 10-second units: when the first finishes (t = 10 s) the other is
    about done too, and 8 more take 4 rounds: about 45 s left (9 units x 10 s / 2), not the
    90 s of the time spent over the units done."""
    now = [0.0]
    monkeypatch.setattr("domadapt.progress.time.monotonic", lambda: now[0])
    bar = Progress(10, "units", unit="units", stream=io.StringIO(), parallel=2)
    now[0] = 10.0
    bar.update()
    assert bar.time_left() == 45.0 and "about 0:45 left" in bar.line()
    for t in (10.0, 20.0, 20.0):  # the second unit, then both of the next round
        now[0] = t
        bar.update()
    assert bar.time_left() == 30.0  # 6 units x 10 s / 2
    now[0] = 0.0
    one = Progress(4, "files", stream=io.StringIO())  # one at a time: the mean pace so far
    now[0] = 16.0
    one.update(2)
    assert one.time_left() == 16.0  # 2 files left x 8 s
