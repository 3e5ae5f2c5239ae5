"""Registries: names, import paths and entry points resolve; anything else is an error naming the options."""

import sys
import textwrap

import pytest

from blocknas.workers.registry import Registry, RegistryError, did_you_mean, import_object


def test_registered_names_and_near_misses():
    registry = Registry("widget")
    registry.register("round", 1)

    @registry.register("square")
    def square():
        return 2

    assert registry.get("round") == 1 and registry.get("square") is square
    assert registry.names() == ["round", "square"]
    with pytest.raises(
        RegistryError,
        match=r"widget 'sqaure' is not a known widget \(did you mean 'square'\?\); "
        r"valid: round, square",
    ):
        registry.get("sqaure")
    with pytest.raises(RegistryError, match="registered twice"):
        registry.register("round", 3)
    assert did_you_mean("xyz", ["round"]) == ""


def test_import_paths_in_both_spellings_and_clear_errors():
    assert import_object("os.path:join") is import_object("os.path.join")
    with pytest.raises(RegistryError, match="cannot import 'no_such_package.mod'"):
        import_object("no_such_package.mod:thing")
    with pytest.raises(RegistryError, match="module 'os.path' has no attribute 'nope'"):
        import_object("os.path:nope")
    registry = Registry("widget", adapt=lambda name, obj: ("adapted", obj))
    assert registry.get("os.path:join")[0] == "adapted"


def test_entry_points_of_installed_distributions_are_found(tmp_path, monkeypatch):
    """A distribution on sys.path whose metadata declares ``blocknas.widgets`` entry points (what pip writes)."""
    (tmp_path / "widget_plugin.py").write_text("def make():\n    return 'made'\n\ndef broken():\n    pass\n")
    info = tmp_path / "widget_plugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: widget-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        textwrap.dedent("""\
        [blocknas.widgets]
        fancy = widget_plugin:make
        broken = widget_plugin_missing:thing
        """)
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    registry = Registry("widget")
    assert {"fancy", "broken"} <= set(registry.names()) and "fancy" in registry
    assert registry.get("fancy")() == "made"
    with pytest.raises(RegistryError, match="widget 'broken' .* failed to load"):
        registry.get("broken")
    sys.modules.pop("widget_plugin", None)
