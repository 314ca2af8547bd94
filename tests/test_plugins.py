"""Plugins found through real entry points: discovery, failures, conflicts, disable, isolation.

Each test installs throwaway distributions the way pip would leave them: a module plus a
``<dist>-0.1.dist-info/`` with ``METADATA`` and ``entry_points.txt`` in a directory on
``sys.path``, so ``importlib.metadata`` (and through it pluggy) discovers them. No
registry is patched.
"""

from __future__ import annotations

import importlib
import shutil
import sys
import textwrap
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import lash
from lash.errors import PluginError, PluginNotFound
from lash.plugins import from_options

Install = Callable[[str, str], str]

BACKEND_PLUGIN = """
    import lash
    from lash.plugins import from_options
    from lash_memory import MemoryBackend


    class ThirdPartyBackend(MemoryBackend):
        pass


    @lash.hookimpl
    def lash_register_backends(register):
        register({backend!r}, from_options(ThirdPartyBackend))
"""


@pytest.fixture
def install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Install]:
    """``install(entry_point_name, module_source) -> module name``: a real installed plugin."""
    site = tmp_path / "site-packages"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    modules: list[str] = []

    def install_plugin(name: str, source: str) -> str:
        module = f"lash_fixture_{name}_{uuid.uuid4().hex[:8]}"
        (site / f"{module}.py").write_text(textwrap.dedent(source), encoding="utf-8")
        info = site / f"{module}-0.1.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: 0.1\n", encoding="utf-8")
        (info / "entry_points.txt").write_text(f"[lash]\n{name} = {module}\n", encoding="utf-8")
        importlib.invalidate_caches()
        modules.append(module)
        return module

    yield install_plugin
    for module in modules:
        sys.modules.pop(module, None)
    importlib.invalidate_caches()


class InProcessPlugin:
    """A plugin object passed to ``lash.open(plugins=[...])``: no entry point needed."""

    def __init__(self, backend_name: str) -> None:
        self.backend_name = backend_name

    @lash.hookimpl
    def lash_register_backends(self, register: Callable[..., None]) -> None:
        from lash_memory import MemoryBackend

        register(self.backend_name, from_options(MemoryBackend))


def test_entry_point_plugin_backend_is_discovered_and_usable(install: Install) -> None:
    module = install("thirdparty", BACKEND_PLUGIN.format(backend="thirdparty"))
    with lash.open({"store": {"backend": "thirdparty"}}) as handle:
        assert type(handle.backend).__module__ == module
        assert "thirdparty" in handle.plugin_manager.plugin_names()
        session = handle.session("s")
        session.append_message("user", "stored by a third-party backend")
        assert session.commit().head_revision == 1
        session.close()
        assert handle.session("s").messages() == [{"role": "user", "content": "stored by a third-party backend"}]


def test_plugins_installed_or_removed_after_an_open_are_seen_by_the_next_open(install: Install, tmp_path: Path) -> None:
    memory = {"store": {"backend": "memory"}}
    with lash.open(memory) as handle:  # discovery is remembered between opens ...
        assert "later" not in handle.plugin_manager.backends
    module = install("later", BACKEND_PLUGIN.format(backend="later"))
    with lash.open(memory) as handle:  # ... until an install changes what is installed
        assert handle.plugin_manager.backends.get("later").plugin == "later"
    shutil.rmtree(tmp_path / "site-packages" / f"{module}-0.1.dist-info")  # what pip uninstall removes
    importlib.invalidate_caches()
    with lash.open(memory) as handle:
        assert "later" not in handle.plugin_manager.backends


def test_plugin_that_fails_to_import_names_its_entry_point(install: Install) -> None:
    install("broken", "raise ImportError('missing dependency frobnicate')\n")
    with pytest.raises(PluginError) as info:
        lash.open({"store": {"backend": "memory"}})
    message = str(info.value)
    assert "'broken'" in message and "frobnicate" in message
    assert "disable" in message


def test_disabled_plugin_is_not_loaded(install: Install) -> None:
    install("broken", "raise ImportError('never imported')\n")
    install("thirdparty", BACKEND_PLUGIN.format(backend="thirdparty"))
    config = {"store": {"backend": "memory"}, "plugins": {"disable": ["broken", "thirdparty"]}}
    with lash.open(config) as handle:
        assert "thirdparty" not in handle.plugin_manager.backends
        assert "broken" not in handle.plugin_manager.plugin_names()


def test_two_plugins_registering_one_backend_name_are_both_named(install: Install) -> None:
    install("first_twin", BACKEND_PLUGIN.format(backend="twin"))
    install("second_twin", BACKEND_PLUGIN.format(backend="twin"))
    with pytest.raises(PluginError) as info:
        lash.open({"store": {"backend": "memory"}})
    message = str(info.value)
    assert "'twin'" in message and "first_twin" in message and "second_twin" in message


def test_disabling_one_twin_resolves_the_conflict(install: Install) -> None:
    install("first_twin", BACKEND_PLUGIN.format(backend="twin"))
    install("second_twin", BACKEND_PLUGIN.format(backend="twin"))
    with lash.open({"store": {"backend": "twin"}, "plugins": {"disable": ["second_twin"]}}) as handle:
        assert handle.plugin_manager.backends.get("twin").plugin == "first_twin"


def test_unknown_backend_lists_installed_names_and_the_package_to_install() -> None:
    config = {"store": {"backend": "postgres"}, "plugins": {"disable": ["postgres"]}}
    with pytest.raises(PluginNotFound) as info:
        lash.open(config)
    error = info.value
    assert (error.kind, error.name, error.install_hint) == ("backend", "postgres", "lash-postgres")
    assert "memory" in error.available
    assert "memory" in str(error) and "pip install lash-postgres" in str(error)


def test_unknown_backend_without_a_known_package_lists_installed_names() -> None:
    with pytest.raises(PluginNotFound) as info:
        lash.open({"store": {"backend": "no-such-backend"}})
    assert info.value.install_hint is None
    assert "memory" in str(info.value) and "no-such-backend" in str(info.value)


def test_in_process_plugin_registers_a_backend() -> None:
    with lash.open({"store": {"backend": "inproc"}}, plugins=[InProcessPlugin("inproc")]) as handle:
        session = handle.session()
        session.append_message("user", "hi")
        assert session.commit().head_revision == 1


def test_handles_with_different_plugin_sets_do_not_see_each_others_plugins(install: Install) -> None:
    install("thirdparty", BACKEND_PLUGIN.format(backend="thirdparty"))
    with (
        lash.open({"store": {"backend": "alpha"}}, plugins=[InProcessPlugin("alpha")]) as alpha,
        lash.open(
            {"store": {"backend": "beta"}, "plugins": {"disable": ["thirdparty"]}}, plugins=[InProcessPlugin("beta")]
        ) as beta,
    ):
        assert {"alpha", "thirdparty"} <= set(alpha.plugin_manager.backends.names())
        assert "beta" not in alpha.plugin_manager.backends
        assert "beta" in beta.plugin_manager.backends
        assert "alpha" not in beta.plugin_manager.backends
        assert "thirdparty" not in beta.plugin_manager.backends
    with pytest.raises(PluginNotFound):
        lash.open({"store": {"backend": "alpha"}})
