"""The arrays corpus: feature vectors from a .npz or .csv, as one-frame segments."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import make_moons

from domadapt.corpora import load_corpus
from domadapt.corpora.arrays import VectorCorpus, rotate, rotated_moons, write_arrays
from domadapt.corpora.labels import apply_label_map
from domadapt.corpora.synthetic import synthetic_root
from domadapt.errors import DomadaptError
from domadapt.features import extract_segments


def columns() -> dict[str, np.ndarray]:
    """Six rows: three source (two subjects), three target (two subjects, split train/test)."""
    return {
        "X": np.arange(18, dtype=np.float32).reshape(6, 3),
        "y": np.array(["a", "b", "a", "b", "a", "b"]),
        "subject": np.array(["s1", "s1", "s2", "t1", "t1", "t2"]),
        "domain": np.array(["source"] * 3 + ["target"] * 3),
        "split": np.array(["train", "train", "train", "train", "train", "test"]),
    }


def write_csv(path: Path, cols: dict[str, np.ndarray]) -> Path:
    x = cols["X"]
    header = ["y", "f0", "subject", "f1", "f2", "domain", "split"]  # features may sit between the named columns
    lines = [",".join(header)]
    for i in range(len(x)):
        lines.append(",".join([cols["y"][i], str(x[i, 0]), cols["subject"][i], str(x[i, 1]), str(x[i, 2]),
                               cols["domain"][i], cols["split"][i]]))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def test_npz_rows_of_each_domain_become_one_frame_segments(tmp_path):
    write_arrays(tmp_path / "arrays.npz", columns())
    source = load_corpus("arrays", tmp_path)
    target = load_corpus("arrays_target", tmp_path)
    assert isinstance(source, VectorCorpus) and source.name == "arrays" and target.name == "arrays_target"
    assert source.classes == target.classes == ("a", "b")
    assert source.subjects() == ["s1", "s2"] and target.subjects() == ["t1", "t2"]
    assert source.official_split == {"s1": "train", "s2": "train"}
    assert target.official_split == {"t1": "train", "t2": "test"}
    seg = extract_segments(target, cache_dir=False)
    assert seg.x.shape == (3, 3, 1)
    np.testing.assert_array_equal(seg.x[:, :, 0].numpy(), columns()["X"][3:])
    assert seg.y.tolist() == [1, 0, 1]
    assert [seg.subjects[i] for i in seg.subject.tolist()] == ["t1", "t1", "t2"]


def test_csv_gives_the_same_segments_as_npz(tmp_path):
    write_arrays(tmp_path / "npz" / "arrays.npz", columns())
    write_csv(tmp_path / "csv" / "table.csv", columns())
    from_npz = extract_segments(load_corpus("arrays", tmp_path / "npz"), cache_dir=False)
    from_csv = extract_segments(load_corpus("arrays", tmp_path / "csv", file="table.csv"), cache_dir=False)
    np.testing.assert_array_equal(from_npz.x.numpy(), from_csv.x.numpy())
    assert from_npz.y.tolist() == from_csv.y.tolist()
    assert from_npz.subjects == from_csv.subjects


@pytest.mark.parametrize("key", ["X", "y", "subject", "domain"])
def test_a_missing_key_names_the_file_and_the_key(tmp_path, key):
    cols = columns()
    del cols[key]
    path = write_arrays(tmp_path / "arrays.npz", cols)
    with pytest.raises(DomadaptError) as err:
        load_corpus("arrays", tmp_path)
    message = str(err.value)
    assert "\n" not in message and str(path) in message and f"missing key(s) {key} " in message


def test_bad_files_fail_with_one_line_naming_what_is_wrong(tmp_path):
    with pytest.raises(DomadaptError, match=r"arrays\.npz: no such file"):
        load_corpus("arrays", tmp_path)
    cols = columns()
    write_arrays(tmp_path / "arrays.npz", cols)
    with pytest.raises(DomadaptError, match=r"no rows of domain 'clinic' \(found: source, target\)"):
        load_corpus("arrays", tmp_path, domain="clinic")
    cols["split"] = np.array(["train", "test", "train", "train", "train", "test"])  # s1 on both sides
    write_arrays(tmp_path / "arrays.npz", cols)
    with pytest.raises(DomadaptError, match="subject 's1' has rows in both 'train' and 'test'"):
        load_corpus("arrays", tmp_path)
    cols = columns()
    cols["X"][0, 0] = np.nan
    write_arrays(tmp_path / "arrays.npz", cols)
    with pytest.raises(DomadaptError, match="NaN"):
        load_corpus("arrays", tmp_path)
    (tmp_path / "broken.npz").write_bytes(b"not a zip")
    with pytest.raises(DomadaptError, match=r"broken\.npz: not a readable arrays file"):
        load_corpus("arrays", tmp_path, file="broken.npz")


def test_filtering_and_label_maps_keep_the_vectors(tmp_path):
    write_arrays(tmp_path / "arrays.npz", columns())
    target = load_corpus("arrays_target", tmp_path)
    kept = target.filter(lambda u: u.subject == "t1")
    assert isinstance(kept, VectorCorpus)
    np.testing.assert_array_equal(extract_segments(kept, cache_dir=False).x[:, :, 0].numpy(), columns()["X"][3:5])
    renamed = apply_label_map(target, {"a": "low"}, key="data.label_map.arrays_target")  # drops class b
    seg = extract_segments(renamed, cache_dir=False)
    assert renamed.classes == ("low",) and seg.x[:, 0, 0].tolist() == [12.0]


def test_egemaps_functionals_of_vectors_are_refused(tmp_path):
    from domadapt.features.functionals import utterance_functionals

    write_arrays(tmp_path / "arrays.npz", columns())
    with pytest.raises(DomadaptError, match="holds feature vectors, not audio: egemaps functionals need audio"):
        utterance_functionals(load_corpus("arrays", tmp_path), "egemaps", cache_dir=False)


def test_rotate_is_counter_clockwise():
    np.testing.assert_allclose(rotate(np.array([[1.0, 0.0]]), 90.0), [[0.0, 1.0]], atol=1e-12)


def test_the_synthetic_stand_in_is_ganins_rotated_moons(tmp_path):
    root = synthetic_root("arrays_target", cache_dir=tmp_path)
    assert synthetic_root("arrays", cache_dir=tmp_path) == root  # both sides in one root
    source, target = load_corpus("arrays", root), load_corpus("arrays_target", root)
    assert source.synthetic and target.synthetic
    xs = extract_segments(source, cache_dir=False).x[:, :, 0].numpy()
    xt = extract_segments(target, cache_dir=False).x[:, :, 0].numpy()
    assert xs.shape == xt.shape == (300, 2)
    np.testing.assert_allclose(rotate(xt, -35.0), make_moons(300, noise=0.1, random_state=10_000)[0], atol=1e-5)
    np.testing.assert_allclose(xs, make_moons(300, noise=0.1, random_state=0)[0], atol=1e-6)


def test_moons_test_split_is_a_fresh_draw_of_the_target():
    cols = rotated_moons(seed=3, test=50)
    assert (cols["split"] == "test").sum() == 50 and set(cols["domain"][cols["split"] == "test"]) == {"target"}
    test_subjects = set(cols["subject"][cols["split"] == "test"])
    assert not test_subjects & set(cols["subject"][cols["split"] == "train"])
