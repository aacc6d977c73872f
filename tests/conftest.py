import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # tests/tiny.py for every test module


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """No test reads or writes the user's ~/.cache/domadapt."""
    monkeypatch.setenv("DOMADAPT_CACHE", str(tmp_path_factory.getbasetemp() / "domadapt-cache"))
