"""docs/options.md is what `domadapt list --markdown` prints now, and `domadapt.config` is light."""

import subprocess
import sys
from pathlib import Path

import pytest

from domadapt.option_reference import markdown_reference

ROOT = Path(__file__).resolve().parents[2]


def test_checked_in_option_reference_is_current():
    page = (ROOT / "docs" / "options.md").read_text(encoding="utf-8")
    assert page == markdown_reference() + "\n", (
        "docs/options.md is stale: python -m domadapt.cli list --markdown > docs/options.md"
    )


def test_reference_shows_each_entrys_allowed_values():
    page = markdown_reference()
    # a backbone's choices, a method's bound and the kinds `domadapt list` did not show before
    assert "| `residual` | `'mul'` | one of mul, add |" in page
    assert "| `threshold` | `0.9` | a number in (0, 1] |" in page
    assert "### `ray`" in page and "## Executors" in page and "## Extractors" in page


def test_the_registered_validators_are_what_the_config_accepts_and_the_engine_calls():
    # one declaration: VALIDATORS. The config accepts a validator registered by the user, the
    # engine scores with it, and an unknown name is refused when the recipe is checked.
    from types import SimpleNamespace

    import torch

    from domadapt.engine.scoring import score_probs
    from domadapt.errors import DomadaptError
    from domadapt.recipe_loader import build_config
    from domadapt.registries import VALIDATORS

    confident = torch.tensor([[1.0, 0.0], [0.0, 1.0]])  # two sure predictions, one per class: IM's maximum
    assert VALIDATORS.get("im")(confident) == pytest.approx(float(torch.log(torch.tensor(2.0))), abs=1e-4)
    stage = SimpleNamespace(name="joint", select="im")
    assert score_probs(stage, confident) == {"score": VALIDATORS.get("im")(confident), "im": VALIDATORS.get("im")(confident)}

    @VALIDATORS.register("top_probability")
    def top_probability(probs):
        """Mean top-class probability."""
        return float(probs.max(dim=1).values.mean())

    try:
        cfg = build_config({}, overrides={"train.unsupervised_selection": "top_probability"})
        half = torch.tensor([[0.5, 0.5], [0.25, 0.75]])
        assert score_probs(stage, half, unsupervised=cfg.train.unsupervised_selection) == {
            "score": 0.625, "top_probability": 0.625}
    finally:
        VALIDATORS.unregister("top_probability")
    with pytest.raises(DomadaptError, match=r"^train.unsupervised_selection = 'top_probability': expected one of im, snd "):
        build_config({}, overrides={"train.unsupervised_selection": "top_probability"})
    with pytest.raises(DomadaptError, match="stage 'joint': select must be labels or a validator \\(im, snd\\), got 'top_probability'"):
        score_probs(stage, half, unsupervised="top_probability")


def test_importing_the_config_loads_no_torch():
    code = "import sys, domadapt.config; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
