"""Your own modules, imported so that their decorated entries register themselves
(``--import MODULE``, a recipe's ``[recipe] import = [...]``, a Ray worker before its unit)."""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from collections.abc import Sequence
from pathlib import Path

from domadapt.errors import DomadaptError

__all__ = ["import_modules"]


def import_modules(specs: Sequence[str], *, base: Path | None = None) -> list[types.ModuleType]:
    """Import user modules so that their decorated registrations exist.

    Each spec is a dotted module name on ``sys.path`` (``my_lab.corpora``) or a path to a
    ``.py`` file (relative paths from ``base``, default the working directory). Importing
    the same module twice registers nothing twice: a module is loaded once per process.
    """
    modules = []
    for spec in specs:
        if not isinstance(spec, str) or not spec:
            raise DomadaptError(f"import {spec!r}: expected a module name or a path to a .py file")
        if spec.endswith(".py") or "/" in spec or "\\" in spec:
            modules.append(_import_file(Path(spec) if base is None else base / spec))
            continue
        try:
            modules.append(importlib.import_module(spec))
        except ModuleNotFoundError as exc:
            if exc.name is None or not spec.startswith(exc.name):
                raise  # a module the user's module imports is missing: their traceback
            raise DomadaptError(
                f"import {spec!r}: no module named {exc.name!r} on sys.path "
                "(give a path to a .py file, or run from the folder that holds it)"
            ) from None
    return modules


def _import_file(path: Path) -> types.ModuleType:
    path = path.expanduser().resolve()
    if not path.is_file():
        raise DomadaptError(f"import {str(path)!r}: no such file")
    name = path.stem
    loaded = sys.modules.get(name)
    if loaded is not None:
        if Path(getattr(loaded, "__file__", "") or "").resolve() == path:
            return loaded
        raise DomadaptError(
            f"import {str(path)!r}: a different module named {name!r} is already imported "
            f"({getattr(loaded, '__file__', None)}); rename the file"
        )
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise DomadaptError(f"import {str(path)!r}: not a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # before exec: dataclasses and pickling look the module up
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module
