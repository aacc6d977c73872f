"""The one Registry: registering, listing, option checks and their one-line errors, building."""

import subprocess
import sys
from dataclasses import dataclass, field
from typing import Literal, Sequence

import pytest

from domadapt.errors import DomadaptError
from domadapt.plugins import import_modules
from domadapt.registry import Registry, option


def _backbones() -> Registry:
    reg = Registry("backbone", passed=("in_channels",))

    @reg.register("toy")
    class Toy:
        """A toy backbone.

        Second line, not part of the doc.
        """

        @dataclass(frozen=True)
        class Options:
            width: int = option(8, min=1)
            pool: str = option("mean", choices=("mean", "max"))
            dropout: float = field(default=0.1, metadata={"min": 0.0, "lt": 1.0})
            sizes: tuple[int, ...] = (3, 3)
            odd_only: bool = False

            def __post_init__(self) -> None:
                if self.odd_only and self.width % 2 == 0:
                    raise DomadaptError(f"width={self.width} must be odd with odd_only")

        def __init__(self, *, in_channels: int, options: "Toy.Options | None" = None) -> None:
            self.in_channels = in_channels
            self.options = options

    return reg


def _corpora() -> Registry:
    reg = Registry("corpus", plural="corpora", passed=("root",))

    @reg.register("layout", doc="explicit one-line doc")
    def load(root: str, *, layout: Literal["auto", "flat"] = "auto",
             tasks: Sequence[str] | None = None, scale: float = 1.0) -> tuple:
        return root, layout, tasks, scale

    return reg


def test_register_list_get_doc_and_mapping_protocol():
    reg = _backbones()
    reg.register("alpha")(len)
    assert reg.names() == ["alpha", "toy"] == list(reg)
    assert len(reg) == 2 and "toy" in reg and "nope" not in reg
    assert reg.get("alpha") is len and reg["alpha"] is len
    assert [name for name, _ in reg.items()] == ["alpha", "toy"]
    assert reg.doc("toy") == "A toy backbone."
    assert _corpora().doc("layout") == "explicit one-line doc"

    class Undocumented(dict):
        pass

    reg.register("undocumented")(Undocumented)
    assert reg.doc("undocumented") == ""  # not dict's docstring


def test_unknown_name_lists_the_known_ones():
    reg = _corpora()
    reg.register("other")(lambda root: root)
    with pytest.raises(DomadaptError, match=r"^unknown corpus 'emodb'; known corpora: layout, other$"):
        reg.get("emodb")
    with pytest.raises(DomadaptError, match="unknown corpus 'emodb'"):
        reg.check("emodb", {})


def test_registering_a_name_twice_raises():
    reg = _backbones()
    with pytest.raises(DomadaptError, match=r"backbone 'toy' is already registered \(.*Toy\)"):
        reg.register("toy")(object)
    with pytest.raises(DomadaptError, match="non-empty string"):
        reg.register("")
    toy = reg.unregister("toy")
    assert "toy" not in reg and reg.register("toy")(toy) is toy
    with pytest.raises(DomadaptError, match="unknown backbone 'gone'"):
        reg.unregister("gone")


def test_options_come_from_the_options_dataclass_or_the_signature():
    assert _backbones().options("toy") == {
        "width": 8, "pool": "mean", "dropout": 0.1, "sizes": (3, 3), "odd_only": False,
    }
    # the caller's own argument (root) is not an option
    assert _corpora().options("layout") == {"layout": "auto", "tasks": None, "scale": 1.0}


def test_check_coerces_toml_values():
    reg = _backbones()
    assert reg.check("toy", {"dropout": 0, "sizes": [1, 2]}) == {"dropout": 0.0, "sizes": (1, 2)}
    assert isinstance(reg.check("toy", {"dropout": 0})["dropout"], float)
    assert _corpora().check("layout", {"tasks": ["a"], "scale": 2}) == {"tasks": ("a",), "scale": 2.0}


@pytest.mark.parametrize(
    "options, message",
    [
        ({"widht": 3}, "backbone 'toy': unknown option(s) widht; valid options: width, pool, dropout, sizes, odd_only"),
        ({"width": 0}, "backbone 'toy' option width = 0: expected an int >= 1"),
        ({"width": "8"}, "backbone 'toy' option width = '8': expected an int >= 1"),
        ({"width": True}, "backbone 'toy' option width = True: expected an int >= 1"),
        ({"pool": "avg"}, "backbone 'toy' option pool = 'avg': expected one of mean, max"),
        ({"dropout": 1.0}, "backbone 'toy' option dropout = 1.0: expected a number in [0, 1)"),
        ({"sizes": [1, "2"]}, "backbone 'toy' option sizes = [1, '2']: expected a list of ints"),
        ({"odd_only": 1}, "backbone 'toy' option odd_only = 1: expected true or false"),
        # the Options dataclass's own rule across fields, prefixed with the entry
        ({"odd_only": True}, "backbone 'toy': width=8 must be odd with odd_only"),
    ],
)
def test_a_bad_value_is_one_line_naming_kind_entry_key_value_and_what_is_allowed(options, message):
    with pytest.raises(DomadaptError) as err:
        _backbones().check("toy", options)
    assert str(err.value) == message


def test_annotations_give_choices_and_nullable_sequences():
    reg = _corpora()
    with pytest.raises(DomadaptError, match=r"^corpus 'layout' option layout = 'speaker': expected one of auto, flat$"):
        reg.check("layout", {"layout": "speaker"})
    with pytest.raises(DomadaptError, match=r"option tasks = 'a': expected a list of strings$"):
        reg.check("layout", {"tasks": "a"})
    with pytest.raises(DomadaptError, match=r"valid options: layout, tasks, scale$"):
        reg.check("layout", {"root": "/x"})
    assert reg.check("layout", {"tasks": None}) == {"tasks": None}


def test_check_options_hook_runs_after_the_field_checks():
    reg = Registry("method")
    seen = []

    @reg.register("align")
    class Align:
        @dataclass(frozen=True)
        class Options:
            loss: str = "mmd"

        @classmethod
        def check_options(cls, options: dict) -> None:
            seen.append(options)
            if options.get("loss") not in ("mmd", "coral"):
                raise DomadaptError(f"unknown alignment loss {options['loss']!r}; known losses: coral, mmd")

    assert reg.check("align", {"loss": "coral"}) == {"loss": "coral"}
    expected = r"^method 'align': unknown alignment loss 'wass'; known losses: coral, mmd$"
    with pytest.raises(DomadaptError, match=expected):
        reg.check("align", {"loss": "wass"})
    with pytest.raises(DomadaptError, match="expected a string"):
        reg.check("align", {"loss": 3})
    assert seen == [{"loss": "coral"}, {"loss": "wass"}]  # not called for a wrong type


def test_build_passes_options_dataclass_or_keywords_and_forwards_callers_arguments():
    toy = _backbones().build("toy", in_channels=5, width=3, sizes=[2])
    assert toy.in_channels == 5 and toy.options.width == 3 and toy.options.sizes == (2,)
    assert _corpora().build("layout", "/data", scale=3) == ("/data", "auto", None, 3.0)

    losses = Registry("alignment loss", passed=("feature_dim", "num_classes"))
    losses.register("coral")(lambda: "coral")  # takes no feature_dim: it is not forwarded
    losses.register("lmmd")(lambda num_classes, *, feature_dim, blur=0.1: (num_classes, feature_dim, blur))
    assert losses.build("coral", feature_dim=8) == "coral"
    assert losses.build("lmmd", feature_dim=8, num_classes=3, blur=1) == (3, 8, 1.0)
    with pytest.raises(DomadaptError, match=r"^alignment loss 'lmmd' needs num_classes; it was not given$"):
        losses.build("lmmd", feature_dim=8)
    with pytest.raises(DomadaptError, match="valid options: blur$"):
        losses.build("lmmd", feature_dim=8, num_classes=3, bluur=1)


def test_name_of_registers_nothing_and_adopt_registers_under_the_class_name():
    reg = _backbones()
    toy = reg.get("toy")
    assert reg.name_of("toy") == "toy" and reg.name_of(toy) == "toy"

    class Mine:
        """Mine."""

    with pytest.raises(DomadaptError, match=r"^backbone '.*Mine' is not registered; .* give one of: toy$"):
        reg.name_of(Mine)
    assert len(reg) == 1  # the failed lookup registered nothing
    assert reg.adopt(Mine) == "Mine" and reg.get("Mine") is Mine and reg.adopt(Mine) == "Mine"
    assert reg.name_of(Mine) == "Mine" and len(reg) == 2


def test_builtins_register_themselves_on_first_use():
    code = (
        "import sys; from domadapt.registries import LOSSES; assert 'domadapt.align' not in sys.modules; "
        "print('mmd' in LOSSES, LOSSES.get('mmd').__module__)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["True", "domadapt.align.mmd"]


def test_import_modules_by_name_and_by_path(tmp_path, monkeypatch):
    plugin = tmp_path / "reg_plugin_for_test.py"
    plugin.write_text("COUNT = globals().get('COUNT', 0) + 1\n")
    first = import_modules([str(plugin)])[0]
    again = import_modules(["reg_plugin_for_test.py"], base=tmp_path)[0]
    assert first is again and first.COUNT == 1  # loaded once
    monkeypatch.syspath_prepend(str(tmp_path))
    assert import_modules(["reg_plugin_for_test"])[0] is first
    expected = r"import 'no_such_module_x': no module named 'no_such_module_x' on sys.path"
    with pytest.raises(DomadaptError, match=expected):
        import_modules(["no_such_module_x"])
    with pytest.raises(DomadaptError, match="no such file"):
        import_modules([str(tmp_path / "missing.py")])


def test_a_loss_class_without_its_own_init_builds_through_the_registry():
    # the README's example: an nn.Module subclass inherits __init__(*args, **kwargs), which
    # must not be handed the caller's feature_dim
    import torch

    from domadapt.align import LOSSES, AlignmentLoss, build_loss

    @LOSSES.register("test_mean_shift")
    class MeanShiftLoss(AlignmentLoss):
        """Squared distance between the batch means."""

        def _compute(self, f_s, f_t, **context):
            return (f_s.mean(0) - f_t.mean(0)).pow(2).sum(), {}

    try:
        loss = build_loss("test_mean_shift", feature_dim=4)
        assert float(loss(torch.zeros(3, 4), torch.ones(5, 4))) == 4.0
    finally:
        LOSSES.unregister("test_mean_shift")
