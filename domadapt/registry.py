"""One registry for every pluggable kind: corpora, backbones, alignment losses, methods,
splitters and schedules. A user's own entry is one decorated class or function::

    from domadapt.models import BACKBONES

    @BACKBONES.register("tiny_cnn")
    class TinyCNN(nn.Module):
        '''A two-layer CNN, mean over time; out_dim = width.'''   # the doc `domadapt list` shows

        def __init__(self, *, in_channels: int, width: int = 16) -> None: ...

and ``python -m domadapt.recipe NAME --import my_module`` makes it usable in a recipe.

An entry's *options* are what a recipe may set, declared one way: a frozen dataclass whose
fields are declared with :func:`option` (type, default, ``choices``, ``min`` / ``max`` /
``gt`` / ``lt``) - the entry's ``Options`` (backbones, losses, methods) or the entry itself
when it is a dataclass (schedules). Why this one: a field carries its type, default and
allowed values in one line, the registry checks a recipe's value against it before any data
is read, and its ``__post_init__`` (:func:`check_fields`) checks a directly built entry by
the same rules; a constructor signature has no place for a range. A function entry (a corpus
loader, a splitter) or a quick entry of your own may instead take keyword parameters with
defaults: their annotations (``Literal``, ``X | None``, ``tuple[int, ...]``) are checked,
but they carry no range. Arguments the caller supplies itself are never options
(``Registry(..., passed=("in_channels",))``).

Rules across options live in the ``Options`` dataclass's ``__post_init__`` or in a
classmethod ``check_options(options: dict) -> None`` (nested names). Every error is one line
naming the kind, the entry, the key, the value and what is allowed.

Shaped after timm's ``_registry.py`` (``list_models`` / ``create_model``'s error for an
unknown name), with one mechanism for every kind instead of one per kind.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import types
import typing
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cache, cached_property
from typing import Any, TypeVar

from domadapt.errors import DomadaptError

__all__ = ["OptionSpec", "Registry", "check_fields", "check_values", "dataclass_specs", "option"]

T = TypeVar("T")
_MISSING = dataclasses.MISSING
_BOUNDS = ("min", "max", "gt", "lt")


def option(
    default: Any = _MISSING,
    *,
    default_factory: Callable[[], Any] | Any = _MISSING,
    choices: Sequence[Any] | None = None,
    min: float | None = None,  # noqa: A002 - the metadata key it writes
    max: float | None = None,  # noqa: A002
    gt: float | None = None,
    lt: float | None = None,
) -> Any:
    """A ``dataclasses.field`` whose metadata says which values are allowed.

    ``min``/``max`` are inclusive bounds, ``gt``/``lt`` exclusive ones. Equivalent to
    ``field(default=..., metadata={"choices": (...), "min": ...})``, which works as well.

    Example::

        @dataclass(frozen=True)
        class Options:
            width: int = option(16, min=1)  # channels of both conv layers
            pool: str = option("mean", choices=("mean", "max"))
    """
    meta: dict[str, Any] = {}
    if choices is not None:
        meta["choices"] = tuple(choices)
    for key, bound in (("min", min), ("max", max), ("gt", gt), ("lt", lt)):
        if bound is not None:
            meta[key] = bound
    return dataclasses.field(default=default, default_factory=default_factory, metadata=meta)


# ----------------------------------------------------------------------- one option's check

# The kinds of value a TOML file (or a Python caller) can give, in the order tried.
_SCALARS = (bool, int, float, str)
_NAMES = {bool: "true or false", int: "an int", float: "a number", str: "a string",
          tuple: "a list", list: "a list", dict: "a table"}
_PLURAL = {bool: "bools", int: "ints", float: "numbers", str: "strings"}


@dataclass(frozen=True)
class OptionSpec:
    """What one option accepts. ``kinds`` None means the type is not checked."""

    name: str
    default: Any
    kinds: tuple[type, ...] | None
    item: type | None = None  # element type of a list/tuple option
    nullable: bool = False  # None is accepted (a default of None, or ``X | None``)
    choices: tuple[Any, ...] | None = None
    bounds: tuple[tuple[str, float], ...] = ()

    def describe(self) -> str:
        """What is allowed, in words: ``one of adam, adamw``, ``an int >= 1``."""
        if self.choices is not None:
            return "one of " + ", ".join(_show(c) for c in self.choices)
        if not self.kinds:
            return "a value"
        words = []
        for kind in self.kinds:
            if kind in (tuple, list) and self.item in _PLURAL:
                words.append(f"a list of {_PLURAL[self.item]}")
            else:
                words.append(_NAMES.get(kind, kind.__name__))
        text = " or ".join(dict.fromkeys(words))
        return f"{text} {_describe_bounds(dict(self.bounds))}" if self.bounds else text

    def coerce(self, value: Any) -> Any:
        """``value`` checked and converted (int -> float, list -> tuple); raises ValueError."""
        if value is None:
            if self.nullable:
                return None
            raise ValueError
        if self.kinds is not None:
            value = _coerce_kind(value, self.kinds, self.item)
        if self.choices is not None and value not in self.choices:
            raise ValueError
        if self.bounds and not _within(value, dict(self.bounds)):
            raise ValueError
        return value


def _show(value: Any) -> str:
    if isinstance(value, str) and value and not value[0].isdigit():
        return value
    return repr(value)


def _describe_bounds(b: dict[str, float]) -> str:
    low = ("[", _num(b["min"])) if "min" in b else ("(", _num(b["gt"])) if "gt" in b else None
    high = (_num(b["max"]), "]") if "max" in b else (_num(b["lt"]), ")") if "lt" in b else None
    if low and high:
        return f"in {low[0]}{low[1]}, {high[0]}{high[1]}"
    if low:
        return f"{'>=' if low[0] == '[' else '>'} {low[1]}"
    assert high is not None
    return f"{'<=' if high[1] == ']' else '<'} {high[0]}"


def _num(x: float) -> str:
    return f"{x:g}" if isinstance(x, float) else str(x)


def _within(value: Any, b: dict[str, float]) -> bool:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return True  # bounds speak of numbers; a type error is reported by the kind check
    return (
        ("min" not in b or value >= b["min"])
        and ("max" not in b or value <= b["max"])
        and ("gt" not in b or value > b["gt"])
        and ("lt" not in b or value < b["lt"])
    )


def _coerce_kind(value: Any, kinds: tuple[type, ...], item: type | None) -> Any:
    for kind in kinds:
        if kind is bool and isinstance(value, bool):
            return value
        if kind is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if kind is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if kind is str and isinstance(value, str):
            return value
        if kind is dict and isinstance(value, Mapping):
            return dict(value)
        if kind in (tuple, list) and isinstance(value, (list, tuple)):
            items = [_coerce_kind(v, (item,), None) for v in value] if item in _SCALARS else list(value)
            return tuple(items) if kind is tuple else items
        if kind not in _NAMES and isinstance(value, kind):
            return value
    raise ValueError


def _kind_of(hint: Any) -> tuple[tuple[type, ...] | None, type | None, bool, tuple | None]:
    """(kinds, item type, nullable, choices) read from a type annotation; kinds None when
    the annotation says nothing checkable (``Any``, ``Callable``, a string left unresolved)."""
    origin = typing.get_origin(hint)
    if hint is type(None):
        return (), None, True, None
    if origin is typing.Literal:
        choices = typing.get_args(hint)
        return tuple(dict.fromkeys(type(c) for c in choices)), None, False, choices
    if origin in (typing.Union, types.UnionType):
        kinds: list[type] = []
        item, nullable, choices = None, False, []
        for member in typing.get_args(hint):
            k, i, n, c = _kind_of(member)
            if k is None:
                return None, None, True, None
            kinds += k
            item = item or i
            nullable = nullable or n
            if member is not type(None):
                choices = None if choices is None or c is None else [*choices, *c]
        return tuple(dict.fromkeys(kinds)), item, nullable, (tuple(choices) if choices else None)
    if hint in _SCALARS or hint in (tuple, list, dict):
        return (hint,), None, False, None
    args = typing.get_args(hint)
    if origin is tuple:
        item = args[0] if len(args) == 2 and args[1] is Ellipsis and args[0] in _SCALARS else None
        return (tuple,), item, False, None
    if origin in (list, Sequence, typing.Sequence):
        return (tuple,), (args[0] if args and args[0] in _SCALARS else None), False, None
    if origin in (dict, Mapping, typing.Mapping):
        return (dict,), None, False, None
    return None, None, False, None


def _spec(name: str, default: Any, hint: Any, metadata: Mapping[str, Any]) -> OptionSpec:
    kinds: tuple[type, ...] | None = None
    item, nullable, choices = None, default is None, None
    if hint is not None:
        kinds, item, hint_nullable, choices = _kind_of(hint)
        nullable = nullable or hint_nullable
    # no annotation: the default's type; an annotation that says nothing checkable
    # (``str | Callable``) leaves the value unchecked rather than narrowed to the default's type
    if hint is None and default is not None and type(default) in (*_SCALARS, tuple, list, dict):
        kinds = (type(default),)
        if isinstance(default, (tuple, list)) and default and len({type(v) for v in default}) == 1:
            item = type(default[0]) if type(default[0]) in _SCALARS else None
    if "choices" in metadata:
        choices = tuple(metadata["choices"])
    bounds = tuple((k, metadata[k]) for k in _BOUNDS if k in metadata)
    return OptionSpec(name, default, kinds, item, nullable, choices, bounds)


def _hints(obj: Any) -> dict[str, Any]:
    """Resolved annotations of a dataclass, function or class constructor ({} if unresolvable)."""
    target = obj.__init__ if inspect.isclass(obj) and not dataclasses.is_dataclass(obj) else obj
    try:
        return typing.get_type_hints(target)
    except Exception:  # noqa: BLE001 - a forward reference we cannot see; check by defaults
        return {}


def _field_default(f: dataclasses.Field) -> Any:
    if f.default is not _MISSING:
        return f.default
    if f.default_factory is not _MISSING:  # type: ignore[misc]
        return f.default_factory()  # type: ignore[misc]
    return _MISSING


@cache
def dataclass_specs(cls: type) -> dict[str, OptionSpec]:
    """The options of a dataclass: one :class:`OptionSpec` per init field, in order
    (cached per class: treat the result as read-only)."""
    hints = _hints(cls)
    return {
        f.name: _spec(f.name, _field_default(f), hints.get(f.name), f.metadata)
        for f in dataclasses.fields(cls)
        if f.init
    }


def check_values(
    specs: Mapping[str, OptionSpec], values: Mapping[str, Any], *, label: Callable[[str], str]
) -> dict[str, Any]:
    """``values`` checked against ``specs`` and converted; ``label(key)`` starts the error
    (``"train.epochs"``, ``"backbone 'tim' option filters"``). Unknown keys are the caller's
    to report (it knows how to word "valid keys")."""
    out = {}
    for key, value in values.items():
        spec = specs[key]
        try:
            out[key] = spec.coerce(value)
        except ValueError:
            raise DomadaptError(f"{label(key)} = {value!r}: expected {spec.describe()}") from None
    return out


def check_fields(instance: Any, *, where: str) -> None:
    """Raise DomadaptError if a field of the dataclass ``instance`` breaks its type, choices
    or range: what a ``__post_init__`` calls so that direct construction obeys the same
    metadata as a recipe value (``where`` starts the message: ``"dann schedule"``)."""
    specs = dataclass_specs(type(instance))
    check_values(specs, {key: getattr(instance, key) for key in specs}, label=lambda key: f"{where} {key}")


# ----------------------------------------------------------------------------- the registry


class _Entry:
    """One registered object and what is derived from it (lazily, on first use)."""

    def __init__(self, obj: Any, doc: str, passed: tuple[str, ...]) -> None:
        self.obj = obj
        self.doc = doc
        self.passed = passed

    @cached_property
    def options_class(self) -> type | None:
        """The dataclass whose fields are the options, if there is one."""
        holder = getattr(self.obj, "Options", None)
        if dataclasses.is_dataclass(holder):
            return holder
        return self.obj if dataclasses.is_dataclass(self.obj) and inspect.isclass(self.obj) else None

    @cached_property
    def parameters(self) -> list[inspect.Parameter]:
        try:
            params = inspect.signature(self.obj).parameters.values()
        except (TypeError, ValueError):  # a builtin without a signature: no options
            return []
        return list(params)

    @cached_property
    def specs(self) -> dict[str, OptionSpec]:
        if self.options_class is not None:
            specs = dataclass_specs(self.options_class)
            return {k: v for k, v in specs.items() if k not in self.passed}
        hints = _hints(self.obj)
        return {
            p.name: _spec(p.name, p.default, hints.get(p.name), {})
            for p in self.parameters
            if p.default is not p.empty
            and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
            and p.name not in self.passed
        }

    def accepts(self, name: str) -> bool:
        # by name only: a bare ``**kwargs`` (an nn.Module subclass without its own __init__
        # inherits one) does not mean the entry wants the caller's feature_dim
        return any(p.name == name and p.kind is not p.VAR_KEYWORD for p in self.parameters)

    def required(self, n_args: int) -> list[str]:
        """Parameters without a default that ``n_args`` positional arguments do not fill."""
        out = []
        for p in self.parameters:
            if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) or p.default is not p.empty:
                continue
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and n_args > 0:
                n_args -= 1
                continue
            out.append(p.name)
        return out


class Registry:
    """Named entries of one kind, built with checked options.

    Args:
        kind: what an entry is, in error messages (``"backbone"``, ``"alignment loss"``).
        plural: the plural of ``kind`` (default ``kind + "s"``).
        passed: argument names the caller always supplies itself (a loss's ``feature_dim``);
            they are never options, and :meth:`build` forwards them only to entries that
            take them.

    Example::

        >>> SCHEDULES = Registry("schedule")
        >>> @SCHEDULES.register("half")
        ... def half(value: float = 0.5):
        ...     '''lambda(p) = value.'''
        ...     return lambda p: value
        >>> SCHEDULES.names(), SCHEDULES.doc("half"), SCHEDULES.options("half")
        (['half'], 'lambda(p) = value.', {'value': 0.5})
        >>> SCHEDULES.build("half", value=2)(0.3)
        2.0
    """

    def __init__(
        self, kind: str, *, plural: str | None = None, passed: Sequence[str] = (), builtins: str | None = None
    ) -> None:
        self.kind = kind
        self.plural = plural or f"{kind}s"
        self.passed = tuple(passed)
        self.builtins = builtins
        self._builtins_loaded = builtins is None
        self._registered: dict[str, _Entry] = {}

    @property
    def _entries(self) -> dict[str, _Entry]:
        """The entries, after the module of the built-ins (``builtins``) is imported: its
        classes register themselves with the same decorator a user's do, so the registry can
        live in a module that imports no torch (``domadapt.registries``)."""
        if not self._builtins_loaded:
            self._builtins_loaded = True  # first: the built-ins' own registering reads _entries
            try:
                importlib.import_module(self.builtins)  # type: ignore[arg-type]
            except BaseException:
                self._builtins_loaded = False
                raise
        return self._registered

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}: {', '.join(self.names())})"

    # -- registering and looking up

    def register(self, name: str, *, doc: str | None = None) -> Callable[[T], T]:
        """Decorator: register a class or function as ``name``; returns it unchanged.

        ``doc`` (one line) defaults to the first line of the object's docstring. A name
        registered twice raises.
        """
        if not isinstance(name, str) or not name.strip():
            raise DomadaptError(f"{self.kind} name {name!r}: expected a non-empty string")
        if doc is not None and "\n" in doc:
            raise DomadaptError(f"{self.kind} {name!r}: doc must be one line")

        def decorator(obj: T) -> T:
            if name in self._entries:
                other = self._entries[name].obj
                raise DomadaptError(
                    f"{self.kind} {name!r} is already registered "
                    f"({getattr(other, '__module__', '?')}.{getattr(other, '__qualname__', other)}); "
                    "choose another name"
                )
            # the object's own docstring: inspect.getdoc would fall back to a base class's
            own = obj.__doc__ if isinstance(getattr(obj, "__doc__", None), str) else ""
            text = doc if doc is not None else inspect.cleandoc(own).split("\n")[0]
            self._entries[name] = _Entry(obj, text, self.passed)
            return obj

        return decorator

    def unregister(self, name: str) -> Any:
        """Remove entry ``name`` and return its object (a test's or a notebook cell's own
        entry, before it is registered again)."""
        entry = self._entry(name)
        del self._entries[name]
        return entry.obj

    def names(self) -> list[str]:
        """The registered names, sorted."""
        return sorted(self._entries)

    def get(self, name: str) -> Any:
        """The object registered as ``name``; an unknown name raises listing the known ones."""
        return self._entry(name).obj

    __getitem__ = get

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)

    def items(self) -> list[tuple[str, Any]]:
        """``(name, object)`` pairs, sorted by name."""
        return [(name, self._entries[name].obj) for name in self.names()]

    def doc(self, name: str) -> str:
        """The entry's one-line description."""
        return self._entry(name).doc

    def name_of(self, obj: Any) -> str:
        """The registered name of ``obj``; a string is returned as it is. Registers nothing:
        an unregistered object raises (:meth:`adopt` registers one)."""
        if isinstance(obj, str):
            return obj
        for name, entry in self._entries.items():
            if entry.obj is obj:
                return name
        raise DomadaptError(
            f"{self.kind} {getattr(obj, '__qualname__', obj)!r} is not registered; "
            f"register it with the registry's .register(NAME) decorator, or give one of: {', '.join(self.names())}"
        )

    def adopt(self, obj: Any) -> str:
        """``obj``'s registered name, registering it under its ``__name__`` first if it is not
        (how the library API accepts a class where a recipe gives a name)."""
        if isinstance(obj, str) or any(entry.obj is obj for entry in self._entries.values()):
            return self.name_of(obj)
        name = getattr(obj, "__name__", None)
        if not isinstance(name, str):
            raise DomadaptError(
                f"{self.kind} {obj!r}: expected a registered name or a class/function to register"
            )
        self.register(name)(obj)
        return name

    # -- options

    def options(self, name: str) -> dict[str, Any]:
        """Option name -> default of entry ``name``, in declaration order."""
        return {key: spec.default for key, spec in self._entry(name).specs.items()}

    def option_specs(self, name: str) -> dict[str, OptionSpec]:
        """Option name -> :class:`OptionSpec` (type, choices, bounds) of entry ``name``."""
        return dict(self._entry(name).specs)

    def check(self, name: str, options: Mapping[str, Any] | None) -> dict[str, Any]:
        """``options`` checked against entry ``name`` and converted (int -> float where a
        float is expected, list -> tuple); returns only the given keys.

        Raises DomadaptError (one line) for an unknown name or option, a value of the wrong
        type or outside its choices or range, or what the entry's ``Options`` dataclass or
        ``check_options`` classmethod rejects.
        """
        entry = self._entry(name)
        where = f"{self.kind} {name!r}"
        if options is None:
            options = {}
        if not isinstance(options, Mapping):
            raise DomadaptError(f"{where}: options must be a table of name = value, got {options!r}")
        unknown = [key for key in options if key not in entry.specs]
        if unknown:
            raise DomadaptError(
                f"{where}: unknown option(s) {', '.join(map(str, unknown))}; "
                f"valid options: {', '.join(entry.specs) or '(none)'}"
            )
        checked = check_values(entry.specs, options, label=lambda key: f"{where} option {key}")
        try:
            if entry.options_class is not None:
                entry.options_class(**checked)  # its own rules across fields (__post_init__)
            hook = getattr(entry.obj, "check_options", None)
            if callable(hook):
                hook(dict(checked))
        except DomadaptError as exc:
            raise DomadaptError(f"{where}: {exc}") from None
        return checked

    def build(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """Entry ``name`` called with ``args``, the caller's arguments and checked options.

        Keyword arguments named in ``passed`` or required by the entry (no default) are
        forwarded as they are (a ``passed`` one only if the entry takes it); the rest are
        options, checked by :meth:`check`. An entry with an ``Options`` dataclass receives
        them as ``options=Options(...)``.
        """
        entry = self._entry(name)
        required = entry.required(len(args))
        forwarded = {k: v for k, v in kwargs.items() if k in self.passed or k in required}
        options = {k: v for k, v in kwargs.items() if k not in forwarded}
        checked = self.check(name, options)
        forwarded = {k: v for k, v in forwarded.items() if entry.accepts(k)}
        missing = [p for p in required if p not in forwarded]
        if missing:
            raise DomadaptError(f"{self.kind} {name!r} needs {', '.join(missing)}; it was not given")
        holder = entry.options_class
        if holder is not None and holder is not entry.obj:
            return entry.obj(*args, **forwarded, options=holder(**checked))
        return entry.obj(*args, **forwarded, **checked)

    def _entry(self, name: str) -> _Entry:
        try:
            return self._entries[name]
        except (KeyError, TypeError):
            raise DomadaptError(
                f"unknown {self.kind} {name!r}; known {self.plural}: {', '.join(self.names()) or '(none)'}"
            ) from None
