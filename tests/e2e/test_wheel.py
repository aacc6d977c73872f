"""The install a user gets from a wheel: built from this checkout, installed into a fresh venv,
run from a folder outside the checkout, with a recipe it finds in the package itself."""

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # about a minute: a wheel, a venv and a --quick run (kept in CI)

ROOT = Path(__file__).resolve().parents[2]


def _sources(dest: Path) -> Path:
    """What an sdist holds, copied: the build then writes its build/ and egg-info there,
    never into the checkout."""
    dest.mkdir()
    for name in ("setup.py", "setup.cfg", "pyproject.toml", "README.md", "MANIFEST.in", "requirements.txt"):
        shutil.copy2(ROOT / name, dest / name)
    for folder in ("domadapt", "recipes"):
        shutil.copytree(ROOT / folder, dest / folder, ignore=shutil.ignore_patterns("__pycache__"))
    return dest


@pytest.mark.usefixtures("embedded_corpora")  # its runs take no data paths
def test_the_wheel_runs_a_packaged_recipe_outside_the_checkout(tmp_path):
    src = _sources(tmp_path / "src")
    # the standard (isolated) build: its setuptools and wheel come from the registry, like a user's
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", tmp_path / "dist", src], check=True)
    (wheel,) = (tmp_path / "dist").glob("domadapt-*.whl")

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", venv], check=True)
    python = venv / "bin" / "python"
    site = Path(subprocess.check_output([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], text=True).strip())
    # the dependencies: this environment's installed lock (torch is not downloaded again); a path
    # added by a .pth file runs none of its own .pth files, so this checkout's editable install stays out
    (site / "lock_packages.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([python, "-m", "pip", "install", "--no-deps", "-q", wheel], check=True)

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    where = subprocess.check_output(
        [python, "-c", "import domadapt, domadapt.recipe_loader as c; print(domadapt.__file__); print(*c.recipes_location(), sep='\\n')"],
        cwd=elsewhere, env=env, text=True,
    ).splitlines()
    assert Path(where[0]).is_relative_to(site), where  # the installed wheel, not the checkout
    assert where[1:] == [str(site / "domadapt" / "recipes"), "package data"]
    listed = subprocess.check_output([venv / "bin" / "domadapt", "list", "recipes"], cwd=elsewhere, env=env, text=True)
    assert f"    {site / 'domadapt' / 'recipes' / 'casia2modma.toml'}\n" in listed  # the console script too

    out = tmp_path / "run"
    run = subprocess.run(
        [python, "-m", "domadapt.recipe", "casia2modma", "--quick", "--methods", "target_only", "--threads", "1", "--out", out],
        cwd=elsewhere, env=env, text=True, capture_output=True, timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert (out / "results.json").is_file()
    assert "recipe casia2modma (--quick)" in run.stdout

    # a final model from the installed package, then its predictions through the console script
    model = tmp_path / "model"
    final = subprocess.run(
        [python, "-m", "domadapt.recipe", "casia2modma", "--quick", "--final", "--method", "align:mmd", "--threads", "1",
         "--set", "train.epochs=1", "--set", "train.pretrain_epochs=1", "--out", model],
        cwd=elsewhere, env=env, text=True, capture_output=True, timeout=600,
    )
    assert final.returncode == 0, final.stderr[-3000:]
    assert sorted(p.name for p in model.glob("model.*")) == ["model.json", "model.safetensors"]
    # one subject's folder of the synthetic MODMA the runs read (embedded_corpora, conftest.py)
    modma = next(Path(os.environ["DOMADAPT_CACHE"]).glob("synthetic/*/audio_lanzhou_2015"))
    audio = sorted(p for p in modma.iterdir() if p.is_dir())[0]
    predicted = subprocess.run(
        [venv / "bin" / "domadapt", "-q", "predict", model, audio, "--out", tmp_path / "preds.csv"],
        cwd=elsewhere, env=env, text=True, capture_output=True, timeout=600,
    )
    assert predicted.returncode == 0, predicted.stderr[-3000:]
    header = (tmp_path / "preds.csv").read_text().splitlines()[0]
    assert header == "path,subject,class,p_HC,p_MDD,n_windows"
