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


def test_the_validators_listed_are_the_ones_the_config_accepts_and_the_engine_computes():
    import dataclasses

    import torch

    from domadapt.config import TrainConfig
    from domadapt.engine.scoring import SELECTIONS
    from domadapt.registries import VALIDATORS

    field = next(f for f in dataclasses.fields(TrainConfig) if f.name == "unsupervised_selection")
    assert VALIDATORS.names() == sorted(field.metadata["choices"]) == sorted(set(SELECTIONS) - {"labels"})
    confident = torch.tensor([[1.0, 0.0], [0.0, 1.0]])  # two sure predictions, one per class: IM's maximum
    assert VALIDATORS.get("im")(confident) == pytest.approx(float(torch.log(torch.tensor(2.0))), abs=1e-4)


def test_importing_the_config_loads_no_torch():
    code = "import sys, domadapt.config; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
