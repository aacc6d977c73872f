import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))  # tests/tiny.py for every test module


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """No test reads or writes the user's ~/.cache/domadapt."""
    monkeypatch.setenv("DOMADAPT_CACHE", str(tmp_path_factory.getbasetemp() / "domadapt-cache"))


@pytest.fixture(autouse=True, scope="session")
def one_thread():
    """One intra-op thread: the tests' tiny models run faster without threads, and a busy
    2-core machine does not stall them (torch's spinning worker threads)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
