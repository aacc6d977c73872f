"""The package list, which setup.cfg cannot say: every ``domadapt*`` package found, plus the
top-level ``recipes/`` folder installed as ``domadapt.recipes`` (package data, so that a
wheel carries the recipes; ``domadapt.recipe_loader.recipes_dir``). Everything else: setup.cfg."""

from setuptools import find_packages, setup

setup(
    packages=[*find_packages(include=["domadapt*"]), "domadapt.recipes"],
    package_dir={"domadapt.recipes": "recipes"},
)
