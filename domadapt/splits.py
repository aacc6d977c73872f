"""Train/test splits over segments that keep each subject (speaker) on one side.

Every splitter is a :class:`Splitter` with one signature, ``split(y, subjects, *,
utterances=None, sessions=None, roles=None)``: per-SEGMENT arrays of the class index and the
subject, and the optional per-segment inputs the splitter names in ``uses`` (its recording,
its session, its role in a corpus's own split); it yields :class:`Fold` objects of segment
indices. Every fold passes :func:`check_no_leakage` before it is handed out: ~99% accuracy
on MODMA comes from random segment splits that put the same person in train and test, so
domadapt is subject-independent by default and refuses overlap unless asked explicitly
(:class:`UtteranceKFold` with ``allow_subject_overlap=True``, whose folds then carry
``subject_overlap=True`` so reports say so).

Example::

    splitter = build_splitter("subject_kfold", n_splits=5, seed=0)
    for fold in splitter.split(y, subjects):
        train, val = carve_validation(fold.train, y, subjects, seed=0)
        ...  # fit on train, select on val, report on fold.test
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar, Hashable, Iterator, Mapping

import numpy as np
from sklearn.model_selection import KFold, StratifiedGroupKFold

from domadapt.errors import DomadaptError
from domadapt.registries import SPLITTERS
from domadapt.registry import check_fields, option

__all__ = [
    "LeakageError",
    "Fold",
    "Splitter",
    "SplitterOptions",
    "check_no_leakage",
    "subject_labels",
    "SubjectGroupedKFold",
    "LeaveOneGroupOutSplit",
    "OfficialSplit",
    "UtteranceKFold",
    "carve_validation",
    "build_splitter",
    "list_splitters",
]

_SHOW = 5  # how many overlapping subjects an error message names before "... (N in all)"


class LeakageError(DomadaptError):
    """The same subject (or segment) is on both sides of a split."""


@dataclass(frozen=True)
class Fold:
    """One split of segment indices.

    ``train``/``test`` (and ``val`` where the protocol fixes one, e.g. the DAIC-WOZ dev set)
    are sorted int arrays into the segment arrays. ``val is None`` means: carve one from
    ``train`` with :func:`carve_validation`. ``subject_overlap`` is True only when a subject
    really is on both sides (possible only with :class:`UtteranceKFold`'s
    ``allow_subject_overlap`` option).
    ``held_out`` names what the test side is (a subject, a session, "test", "fold 3/5").
    """

    index: int
    train: np.ndarray
    test: np.ndarray
    val: np.ndarray | None = None
    subject_overlap: bool = False
    held_out: str = ""


# --------------------------------------------------------------------------- helpers


def _as_1d(name: str, a: Any) -> np.ndarray:
    arr = np.asarray(a)
    if arr.ndim != 1:
        raise DomadaptError(f"{name} must be a 1-D per-segment array, got shape {arr.shape}")
    return arr


def _check_inputs(y: Any, groups: Any) -> tuple[np.ndarray, np.ndarray]:
    y = _as_1d("y", y)
    groups = _as_1d("groups", groups)
    if len(y) != len(groups):
        raise DomadaptError(f"y has {len(y)} segments but groups has {len(groups)}")
    if len(y) == 0:
        raise DomadaptError("cannot split an empty set of segments")
    return y, groups


def _name_some(values: Any) -> str:
    values = list(values)
    shown = ", ".join(str(v) for v in values[:_SHOW])
    return shown if len(values) <= _SHOW else f"{shown}, ... ({len(values)} in all)"


def _overlap(groups: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.intersect1d(groups[a], groups[b])


def check_no_leakage(
    groups: Any,
    train_idx: Any,
    test_idx: Any,
    *,
    allow_overlap: bool = False,
    what: str = "test",
) -> None:
    """Raise :class:`LeakageError` if a subject has segments in both ``train_idx`` and ``test_idx``.

    A segment index on both sides is always an error (that is a bug, not a protocol);
    subject overlap is accepted only with ``allow_overlap=True``. ``what`` names the second
    side in the message ("test", "validation").
    """
    groups = _as_1d("groups", groups)
    train_idx = _as_1d("train_idx", train_idx).astype(np.int64, copy=False)
    test_idx = _as_1d("test_idx", test_idx).astype(np.int64, copy=False)
    same = np.intersect1d(train_idx, test_idx)
    if same.size:
        raise LeakageError(
            f"{same.size} segment indices are in both train and {what}: {_name_some(same)}"
        )
    if allow_overlap:
        return
    shared = _overlap(groups, train_idx, test_idx)
    if shared.size:
        raise LeakageError(
            f"{shared.size} subject(s) have segments in both train and {what}: "
            f"{_name_some(shared)}. Use a subject-grouped splitter, or pass "
            "allow_subject_overlap=True to accept (and report) the leak."
        )


def subject_labels(y: Any, groups: Any, *, strict: bool = False) -> dict[Hashable, int]:
    """Majority label per subject (ties go to the smaller class index).

    With ``strict=True`` a subject whose segments carry more than one label raises
    :class:`DomadaptError` (depression corpora: one label per person). Emotion corpora have
    every label per speaker; there the majority label is only a stratification hint.
    """
    y, groups = _check_inputs(y, groups)
    uniq, g_inv = np.unique(groups, return_inverse=True)
    classes, y_inv = np.unique(y, return_inverse=True)
    counts = np.zeros((len(uniq), len(classes)), dtype=np.int64)
    np.add.at(counts, (g_inv, y_inv), 1)
    if strict:
        mixed = uniq[(counts > 0).sum(axis=1) > 1]
        if mixed.size:
            raise DomadaptError(
                f"{mixed.size} subject(s) have segments with more than one label: "
                f"{_name_some(mixed)}"
            )
    labels = classes[counts.argmax(axis=1)]  # argmax returns the first max: smallest class
    return {g.item() if hasattr(g, "item") else g: int(lab) for g, lab in zip(uniq, labels)}


# --------------------------------------------------------------------------- splitters


class Splitter(ABC):
    """A protocol's folds, after scikit-learn's ``BaseCrossValidator``: one ``split`` signature
    for every protocol, so the runner calls each the same way.

    ``split(y, subjects, *, utterances=None, sessions=None, roles=None)`` takes per-segment
    arrays: ``y`` (class index) and ``subjects`` (subject index) always; of the optional ones
    a splitter reads only those it names in :attr:`uses`, and the runner computes only those
    (a corpus without sessions fails only a protocol that needs them). Every fold it yields
    has passed :func:`check_no_leakage`.
    """

    #: the optional per-segment inputs ``split`` reads: "utterances", "sessions", "roles"
    uses: ClassVar[tuple[str, ...]] = ()
    #: whether a subject may be on both sides of a fold (reported, never silent)
    allows_subject_overlap: bool = False

    @abstractmethod
    def split(
        self, y: Any, subjects: Any, *, utterances: Any = None, sessions: Any = None, roles: Any = None
    ) -> Iterator[Fold]:
        """The folds of the segments described by ``y`` and ``subjects`` (and :attr:`uses`)."""

    def _required(self, name: str, value: Any) -> Any:
        if value is None:
            raise DomadaptError(f"{type(self).__name__}.split needs {name} (one per segment)")
        return value


@dataclass(frozen=True)
class SplitterOptions:
    """Base of a splitter's ``Options`` dataclass: every field declared with
    :func:`~domadapt.registry.option` and checked on construction, so a splitter built
    directly obeys the same rules as one a recipe names."""

    def __post_init__(self) -> None:
        check_fields(self, where="splitter option")


@SPLITTERS.register("subject_kfold")
class SubjectGroupedKFold(Splitter):
    """K folds of whole subjects, stratified by subject label (sklearn ``StratifiedGroupKFold``).

    When every subject has one label (MODMA, DAIC-WOZ) the folds are stratified on the
    subjects themselves (one row per subject), so each test fold holds about the same share
    of depressed subjects however many segments each person has. When subjects carry several
    labels (emotion corpora) it stratifies the segments' class distribution instead.

    Options: ``n_splits`` (every class needs at least this many subjects) and ``seed``
    (shuffles which subjects go together; the same seed gives the same folds).
    """

    @dataclass(frozen=True)
    class Options(SplitterOptions):
        n_splits: int = option(5, min=2)  # number of folds: a k-fold needs a train and a test side
        seed: int = option(0, min=0)  # sklearn's random_state takes no negative seed

    def __init__(self, *, options: Options | None = None) -> None:
        self.options = options if options is not None else self.Options()
        self.n_splits = self.options.n_splits
        self.seed = self.options.seed

    def split(self, y: Any, subjects: Any, *, utterances: Any = None, sessions: Any = None, roles: Any = None) -> Iterator[Fold]:
        y, groups = _check_inputs(y, subjects)
        uniq, g_inv = np.unique(groups, return_inverse=True)
        if len(uniq) < self.n_splits:
            raise DomadaptError(
                f"{len(uniq)} subjects cannot fill n_splits={self.n_splits} subject-grouped folds"
            )
        labels_of = subject_labels(y, groups)
        y_inv = np.unique(y, return_inverse=True)[1]
        pure = len(np.unique(np.column_stack([g_inv, y_inv]), axis=0)) == len(uniq)  # one label each
        sgkf = StratifiedGroupKFold(n_splits=self.n_splits, shuffle=True, random_state=self.seed)
        if pure:
            subj_y = np.array([labels_of[g.item() if hasattr(g, "item") else g] for g in uniq])
            cls, n_per_class = np.unique(subj_y, return_counts=True)
            if n_per_class.min() < self.n_splits:
                counts = ", ".join(f"class {c}: {n}" for c, n in zip(cls, n_per_class))
                raise DomadaptError(
                    f"too few subjects per class for n_splits={self.n_splits} "
                    f"stratified folds ({counts} subjects); lower n_splits"
                )
            ids = np.arange(len(uniq))
            # one row per subject: stratify the count of subjects, not of segments
            subject_folds = (test for _, test in sgkf.split(ids, subj_y, groups=ids))
            test_sets = (np.flatnonzero(np.isin(g_inv, t)) for t in subject_folds)
        else:
            test_sets = (test for _, test in sgkf.split(y, y, groups=g_inv))
        all_idx = np.arange(len(y))
        for k, test in enumerate(test_sets):
            train = np.setdiff1d(all_idx, test)
            check_no_leakage(groups, train, test)
            yield Fold(k, train, np.sort(test), held_out=f"fold {k + 1}/{self.n_splits}")


class LeaveOneGroupOutSplit(Splitter):
    """One fold per group: each subject (CASIA speaker) or session (IEMOCAP) is tested once.

    ``group_name`` is ``"subject"`` (the groups are ``subjects``) or ``"session"`` (the groups
    are ``sessions``, and ``subjects`` are checked for leakage as well: a session's speakers
    must not appear in another session); it also words the fold names. Registered twice,
    with the group fixed: ``leave_one_subject_out`` and ``leave_one_session_out``.
    """

    @dataclass(frozen=True)
    class Options(SplitterOptions):
        group_name: str = option("subject", choices=("subject", "session"))  # what one fold holds out

    def __init__(self, *, options: Options | None = None) -> None:
        self.options = options if options is not None else self.Options()
        self.group_name = self.options.group_name
        self.uses = ("sessions",) if self.group_name == "session" else ()

    def split(self, y: Any, subjects: Any, *, utterances: Any = None, sessions: Any = None, roles: Any = None) -> Iterator[Fold]:
        groups = self._required("sessions", sessions) if self.group_name == "session" else subjects
        y, groups = _check_inputs(y, groups)
        subjects = _as_1d("subjects", subjects)
        uniq = np.unique(groups)
        if len(uniq) < 2:
            raise DomadaptError(
                f"leave-one-{self.group_name}-out needs at least 2 {self.group_name}s, "
                f"got {len(uniq)}"
            )
        for k, g in enumerate(uniq):
            test = np.flatnonzero(groups == g)
            train = np.flatnonzero(groups != g)
            check_no_leakage(subjects, train, test)
            yield Fold(k, train, test, held_out=f"{self.group_name} {g}")


@SPLITTERS.register("official")
class OfficialSplit(Splitter):
    """The corpus's own split (DAIC-WOZ): one fold from each subject's role.

    Args:
        assignment: maps each subject (the values found in ``subjects``, matched as strings,
            so ``{"300": ...}`` and ``{300: ...}`` both fit ``subjects == 300``) to
            ``"train"``, ``"dev"`` or ``"test"``. Without it, ``split`` reads each segment's
            role from ``roles`` (what the runner gives from ``Corpus.official_split``; None
            for a subject the split does not name).
        options: ``test_role``, the role reported on, ``"test"`` or ``"dev"``. With
            ``"test"`` the dev subjects become ``Fold.val`` (model selection); with ``"dev"``
            there is no fixed validation set and ``val`` is None.
    """

    ROLES = ("train", "dev", "test")

    @dataclass(frozen=True)
    class Options(SplitterOptions):
        test_role: str = option("test", choices=("test", "dev"))  # the role reported on

    def __init__(self, assignment: Mapping[Hashable, str] | None = None, *, options: Options | None = None) -> None:
        if assignment is not None:
            self._check_roles(assignment.values())
        self.options = options if options is not None else self.Options()
        self.assignment = None if assignment is None else {str(k): v for k, v in assignment.items()}
        self.test_role = self.options.test_role
        self.uses = ("roles",) if assignment is None else ()

    def _check_roles(self, roles: Any) -> None:
        bad = {r for r in roles if r is not None and r not in self.ROLES}
        if bad:
            raise DomadaptError(f"official split roles must be one of {self.ROLES}, got {sorted(bad)}")

    def _segment_roles(self, groups: np.ndarray, roles: Any) -> np.ndarray:
        """Each segment's role: from ``assignment`` by subject, else ``roles`` as given."""
        uniq, g_inv = np.unique(groups, return_inverse=True)
        if self.assignment is not None:
            per_subject = np.array([self.assignment.get(str(g)) for g in uniq], dtype=object)
        else:
            role = _as_1d("roles", self._required("roles", roles))
            if len(role) != len(groups):
                raise DomadaptError(f"roles has {len(role)} entries for {len(groups)} segments")
            self._check_roles(set(role.tolist()))
            per_subject = np.empty(len(uniq), dtype=object)
            per_subject[g_inv] = role  # a subject's segments share its role
        missing = [g for g, r in zip(uniq, per_subject) if r is None]
        if missing:
            raise DomadaptError(
                f"{len(missing)} subject(s) are not in the official split: {_name_some(missing)}"
            )
        return per_subject[g_inv]

    def split(self, y: Any, subjects: Any, *, utterances: Any = None, sessions: Any = None, roles: Any = None) -> Iterator[Fold]:
        y, groups = _check_inputs(y, subjects)
        role = self._segment_roles(groups, roles)
        train = np.flatnonzero(role == "train")
        test = np.flatnonzero(role == self.test_role)
        val = np.flatnonzero(role == "dev") if self.test_role == "test" else None
        for side, idx in (("train", train), (self.test_role, test)):
            if idx.size == 0:
                raise DomadaptError(f"the official split has no {side} subjects in these segments")
        check_no_leakage(groups, train, test)
        if val is not None and val.size:
            check_no_leakage(groups, train, val, what="validation")
            check_no_leakage(groups, val, test)
        elif val is not None:
            val = None  # no dev subjects here: the caller carves a validation set
        yield Fold(0, train, test, val=val, held_out=self.test_role)


@SPLITTERS.register("utterance_kfold")
class UtteranceKFold(Splitter):
    """TIM-Net's 10-fold split over utterances (sklearn ``KFold``, shuffled) — subjects leak.

    Kept to reproduce published numbers. The unit of the split is the *utterance*: all
    windows of one recording land on the same side (``utterances`` gives each row's
    utterance id; without it every row is its own utterance). A fold with the same subject
    on both sides raises :class:`LeakageError` unless ``allow_subject_overlap=True``; then
    the fold carries ``subject_overlap=True`` and the report says "subjects overlap".
    """

    uses = ("utterances",)

    @dataclass(frozen=True)
    class Options(SplitterOptions):
        n_splits: int = option(10, min=2)  # TIM-Net's 10 folds
        seed: int = option(0, min=0)  # sklearn's random_state takes no negative seed
        allow_subject_overlap: bool = False  # accept (and report) a subject on both sides

    def __init__(self, *, options: Options | None = None) -> None:
        self.options = options if options is not None else self.Options()
        self.n_splits = self.options.n_splits
        self.seed = self.options.seed
        self.allow_subject_overlap = self.options.allow_subject_overlap

    @property
    def allows_subject_overlap(self) -> bool:
        return self.allow_subject_overlap

    def split(self, y: Any, subjects: Any, *, utterances: Any = None, sessions: Any = None, roles: Any = None) -> Iterator[Fold]:
        y, groups = _check_inputs(y, subjects)
        units = np.arange(len(y)) if utterances is None else _as_1d("utterances", utterances)
        if len(units) != len(y):
            raise DomadaptError(f"utterances has {len(units)} entries for {len(y)} segments")
        uniq, owner = np.unique(units, return_inverse=True)
        if len(uniq) < self.n_splits:
            raise DomadaptError(f"{len(uniq)} utterances cannot fill n_splits={self.n_splits} folds")
        kf = KFold(n_splits=self.n_splits, shuffle=True, random_state=self.seed)
        for k, (_, test_units) in enumerate(kf.split(uniq)):
            is_test = np.isin(owner, test_units)
            train, test = np.flatnonzero(~is_test), np.flatnonzero(is_test)
            check_no_leakage(groups, train, test, allow_overlap=self.allow_subject_overlap)
            overlap = bool(_overlap(groups, train, test).size)
            yield Fold(k, train, test, subject_overlap=overlap, held_out=f"fold {k + 1}/{self.n_splits}")


def carve_validation(
    train_idx: Any,
    y: Any,
    groups: Any,
    *,
    fraction: float = 0.2,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Split ``train_idx`` into (train, validation) made of whole training subjects.

    Model selection then never looks at the test fold. Per (majority) subject label,
    ``round(fraction * n)`` subjects go to validation, keeping at least one subject of each
    label in training; if that rounds to nothing, one subject from the largest label goes.
    Returns two sorted index arrays; they share no subject.
    """
    y, groups = _check_inputs(y, groups)
    if not 0.0 < fraction < 1.0:
        raise DomadaptError(f"validation fraction must be in (0, 1), got {fraction}")
    train_idx = np.sort(_as_1d("train_idx", train_idx).astype(np.int64))
    labels = subject_labels(y[train_idx], groups[train_idx])
    subjects = np.array(list(labels.keys()))
    subj_y = np.array(list(labels.values()))
    if len(subjects) < 2:
        raise DomadaptError(
            f"cannot carve a subject-disjoint validation set from {len(subjects)} training subject(s)"
        )
    rng = np.random.default_rng(seed)
    chosen: list[Any] = []
    per_class = {c: rng.permutation(subjects[subj_y == c]) for c in np.unique(subj_y)}
    for members in per_class.values():
        n_val = min(int(round(fraction * len(members))), len(members) - 1)
        chosen.extend(members[:n_val])
    if not chosen:
        largest = max(per_class.values(), key=len)
        pool = largest if len(largest) >= 2 else rng.permutation(subjects)
        chosen.append(pool[0])
    in_val = np.isin(groups[train_idx], np.array(chosen))
    new_train, val = train_idx[~in_val], train_idx[in_val]
    check_no_leakage(groups, new_train, val, what="validation")
    return new_train, val


# --------------------------------------------------------------------------- registry


@SPLITTERS.register("leave_one_subject_out")
def leave_one_subject_out() -> LeaveOneGroupOutSplit:
    """One fold per subject (a CASIA speaker): each is tested once."""
    return LeaveOneGroupOutSplit(options=LeaveOneGroupOutSplit.Options(group_name="subject"))


@SPLITTERS.register("leave_one_session_out")
def leave_one_session_out() -> LeaveOneGroupOutSplit:
    """One fold per session: ``groups`` are session ids (IEMOCAP: a session's two speakers together)."""
    return LeaveOneGroupOutSplit(options=LeaveOneGroupOutSplit.Options(group_name="session"))


def list_splitters() -> list[str]:
    """The names :func:`build_splitter` knows."""
    return SPLITTERS.names()


def build_splitter(name: str, **opts: Any) -> Splitter:
    """Build a splitter by name; an unknown name or option raises a DomadaptError listing the known ones."""
    return SPLITTERS.build(name, **opts)
