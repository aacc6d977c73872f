"""The README's library example, run exactly as written (paths pointed at small trees)."""

import re
import shutil
from pathlib import Path

import pytest

from domadapt.api import parse_method
from domadapt.corpora import load_corpus
from domadapt.corpora.synthetic import write_casia
from domadapt.errors import DomadaptError

README = Path(__file__).resolve().parents[2] / "README.md"


def _readme_example() -> str:
    text = README.read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    example = [b for b in blocks if "Experiment(" in b]
    assert example, "README shows the library example"
    return example[0]


@pytest.mark.slow  # fits the README example
def test_readme_example_runs(tiny_trees, tmp_path, monkeypatch):
    casia, modma = tiny_trees["casia"], tiny_trees["modma"]
    # A custom target in the generic folder layout: <label>/<subject>/<file>.wav
    clinic = tmp_path / "my_clinic"
    for utt in load_corpus("modma", modma).utterances:
        dest = clinic / utt.label / utt.subject / Path(utt.path).name
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(utt.path, dest)
    code = _readme_example()
    changes = {  # paths, and time: one epoch of a tiny TIM-Net instead of five of the full-size one
        '"/data/CASIA database"': repr(str(casia)),
        '"/data/my_clinic"': repr(str(clinic)),
        '"runs/casia2clinic"': repr(str(tmp_path / "out")),
        '{"epochs": 5}': '{"epochs": 1, "batch_size": 16}',
        'backbone="tim",': 'backbone="tim", backbone_options={"filters": 8, "levels": 2},',
    }
    for written, here in changes.items():
        assert code.count(written) == 1, f"the README example no longer has {written}"
        code = code.replace(written, here)
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(compile(code, "README.md", "exec"), scope)
    results = scope["results"]
    assert [r["method"] for r in results["rows"]] == ["target_only", "align:coral"]
    assert len(results["rows"][1]["metrics"]["uar"]["runs"]) == 3 * 2
    assert results["data"] == "real"
    assert (tmp_path / "out" / "results.md").is_file()


def test_parse_method_forms():
    assert parse_method("align:coral") == {"name": "align", "loss": "coral"}
    assert parse_method("ddg") == {"name": "ddg"}
    assert parse_method(("ddg", {"dann": True})) == {"name": "ddg", "dann": True}
    with pytest.raises(DomadaptError, match="expected 'name'"):
        parse_method(3)
    from domadapt.align import CORALLoss

    assert parse_method(("align", {"loss": CORALLoss})) == {"name": "align", "loss": "coral"}


def test_a_class_works_where_a_name_is_taken(tmp_path):
    import torch

    from domadapt import Experiment
    from domadapt.models import BACKBONES

    class ApiMeanBackbone(torch.nn.Module):
        """Mean over time (not registered: the API registers it under its class name)."""

        def __init__(self, *, in_channels: int) -> None:
            super().__init__()
            self.out_dim = in_channels

        def forward(self, x):
            return x.mean(dim=2)

    casia = write_casia(tmp_path / "CASIA database", files_per_class=1)
    corpus = load_corpus("casia", casia)
    try:
        exp = Experiment(sources=corpus, target=corpus, backbone=ApiMeanBackbone,
                         methods=[{"name": "target_only", "backbone": ApiMeanBackbone}])
        assert BACKBONES.get("ApiMeanBackbone") is ApiMeanBackbone
    finally:
        BACKBONES.unregister("ApiMeanBackbone")  # other tests see the built-in backbones only
    assert exp.config.model.backbone == "ApiMeanBackbone"
    assert exp.config.methods[0].options["backbone"] == "ApiMeanBackbone"
    from domadapt.corpora import load_casia

    assert len(load_corpus(load_casia, casia).utterances) == len(corpus.utterances)  # found as "casia"


def test_evaluate_before_fit_is_an_error(tmp_path):
    from domadapt import Experiment

    casia = write_casia(tmp_path / "CASIA database", files_per_class=1)
    corpus = load_corpus("casia", casia)
    exp = Experiment(sources=corpus, target=corpus)
    with pytest.raises(DomadaptError, match="call fit"):
        exp.evaluate()
