"""The plugin manager: entry-point discovery and the registries plugins fill.

Each :func:`lash.open` builds its own :class:`PluginManager`, so two handles in one process
can load different plugin sets (``[plugins] disable``, ``lash.open(plugins=...)``) and tests
need no global switch.
"""

from __future__ import annotations

import importlib.metadata
import inspect
import os
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Generic, TypeVar

import attrs
import pluggy

from lash import hookspecs
from lash.errors import ConfigError, PluginError, PluginNotFound

ENTRY_POINT_GROUP = "lash"

KNOWN_DISTRIBUTIONS: Mapping[tuple[str, str], str] = {
    ("backend", "memory"): "lash-memory",
    ("backend", "sqlite"): "lash-sqlite",
    ("backend", "postgres"): "lash-postgres",
    ("backend", "s3"): "lash-s3",
    ("blob store", "memory"): "lash-memory",
    ("blob store", "sqlite"): "lash-sqlite",
    ("blob store", "s3"): "lash-s3",
    ("blob store", "postgres"): "lash-postgres",
}
"""Which distribution provides a well-known name (the hint in :class:`PluginNotFound`)."""

BUILTIN_PLUGINS = ("lash.compaction", "lash.keys")
"""Core modules registered as plugins, after the entry points, like any third-party one."""

T = TypeVar("T")
Factory = Callable[[dict[str, Any]], T]


@attrs.frozen
class Registration(Generic[T]):
    """One registered name: its factory and the plugin that registered it."""

    name: str
    factory: Factory[T]
    plugin: str


class Registry(Generic[T]):
    """Names → factories of one kind ("backend", "blob store", "compactor")."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Registration[T]] = {}

    def register(self, name: str, factory: Factory[T], *, plugin: str = "?") -> None:
        if not isinstance(name, str) or not name:
            raise PluginError(f"plugin {plugin!r} registered a {self.kind} with an invalid name {name!r}")
        if not callable(factory):
            raise PluginError(f"plugin {plugin!r} registered {self.kind} {name!r} with a non-callable factory")
        if name in self._entries:
            other = self._entries[name].plugin
            raise PluginError(
                f"{self.kind} {name!r} is registered twice: by plugin {other!r} and by {plugin!r}; "
                f"disable one with [plugins] disable = [{plugin!r}]"
            )
        self._entries[name] = Registration(name, factory, plugin)

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def get(self, name: str) -> Registration[T]:
        try:
            return self._entries[name]
        except KeyError:
            raise PluginNotFound(self.kind, name, self.names(), KNOWN_DISTRIBUTIONS.get((self.kind, name))) from None

    def create(self, name: str, options: Mapping[str, Any]) -> T:
        """Build ``name`` with ``options``."""
        return self.get(name).factory(dict(options))

    def entries(self) -> list[Registration[T]]:
        return [self._entries[n] for n in self.names()]


class PluginManager:
    """A pluggy manager with lash's hookspecs, its entry points and its registries."""

    def __init__(self, *, disable: Iterable[str] = (), plugins: Iterable[object] = (), entry_points: bool = True):
        self.pm = pluggy.PluginManager("lash")
        self.pm.add_hookspecs(hookspecs)
        self._distributions: dict[str, importlib.metadata.Distribution] = {}
        for name in disable:
            self.pm.set_blocked(name)
        if entry_points:
            self._load_entry_points()
        for module_name in BUILTIN_PLUGINS:
            if not self.pm.is_blocked(module_name):
                self.pm.register(importlib.import_module(module_name), name=module_name)
        for plugin in plugins:
            self.pm.register(plugin, name=self._stable_name(plugin))
        self.backends: Registry[Any] = self._collect("backend", self.pm.hook.lash_register_backends)
        self.blob_stores: Registry[Any] = self._collect("blob store", self.pm.hook.lash_register_blob_stores)
        self.compactors: Registry[Any] = self._collect("compactor", self.pm.hook.lash_register_compactors)
        self.key_providers: Registry[Any] = self._collect("key provider", self.pm.hook.lash_register_key_providers)

    @property
    def hook(self) -> Any:
        return self.pm.hook

    def _stable_name(self, plugin: object) -> str:
        """A name for an in-process plugin that is the same in every process.

        Plugin snapshots are stored under it, so pluggy's default for objects without a
        ``__name__`` (their ``id()``) would lose them on resume. Objects are named after
        their class; a second instance of one class gets ``#2``, and so on.
        """
        base = getattr(plugin, "__name__", None)
        if not isinstance(base, str):
            cls = type(plugin)
            base = f"{cls.__module__}.{cls.__qualname__}"
        name, n = base, 1
        while self.pm.has_plugin(name):
            n += 1
            name = f"{base}#{n}"
        return name

    def _load_entry_points(self) -> None:
        for ep in installed_entry_points():
            if self.pm.get_plugin(ep.name) is not None or self.pm.is_blocked(ep.name):
                continue
            try:
                self.pm.register(ep.load(), name=ep.name)
            except Exception as exc:
                dist = f" from distribution {ep.dist.name!r}" if ep.dist else ""
                raise PluginError(
                    f"lash plugin entry point {ep.name!r} ({ep.value}){dist} failed to load: "
                    f"{type(exc).__name__}: {exc}; fix or uninstall it, or add it to [plugins] disable"
                ) from exc
            if ep.dist is not None:
                self._distributions[ep.name] = ep.dist

    def _collect(self, kind: str, hook: Any) -> Registry[Any]:
        registry: Registry[Any] = Registry(kind)
        for impl in hook.get_hookimpls():  # registration order

            def register(name: str, factory: Factory[Any], _plugin: str = impl.plugin_name) -> None:
                registry.register(name, factory, plugin=_plugin)

            impl.function(register=register)
        return registry

    def plugin_names(self) -> list[str]:
        """Names of every registered plugin (blocked names, which pluggy lists as None, excluded)."""
        return [name for name, plugin in self.pm.list_name_plugin() if plugin is not None]

    def distributions(self) -> dict[str, tuple[str, str]]:
        """Plugin name → (distribution, version), for plugins loaded from entry points."""
        return {name: (dist.name, dist.version) for name, dist in self._distributions.items()}


_discovered: tuple[object, tuple[importlib.metadata.EntryPoint, ...]] | None = None


def installed_entry_points() -> tuple[importlib.metadata.EntryPoint, ...]:
    """The ``lash`` entry points of the installed distributions, read again only after an install.

    Reading every distribution's entry points costs tens of milliseconds with a few hundred
    installed, on every :func:`lash.open`; the names and modification times of the
    distributions' metadata directories (a directory listing) tell when to read them again.
    """
    global _discovered
    fingerprint = _installed_metadata()
    if _discovered is None or _discovered[0] != fingerprint:
        _discovered = (fingerprint, tuple(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)))
    return _discovered[1]


_METADATA_SUFFIXES = (".dist-info", ".egg-info", ".egg-link", ".pth")


def _installed_metadata() -> tuple[object, ...]:
    """What pip changes when it installs or removes a distribution, for every ``sys.path`` entry.

    A directory's modification time moves whenever an entry is added or removed (pip
    replaces a distribution's metadata directory even when it reinstalls the same version);
    the names catch what a coarse clock could miss.
    """
    return tuple((entry, *_metadata_of(entry or ".")) for entry in sys.path)


def _metadata_of(entry: str) -> tuple[int | None, list[str] | None]:
    try:
        modified = os.stat(entry).st_mtime_ns
        if not os.path.isdir(entry):  # a zip file
            return modified, None
        return modified, sorted(name for name in os.listdir(entry) if name.endswith(_METADATA_SUFFIXES))
    except OSError:
        return None, None


def from_options(constructor: Callable[..., T]) -> Factory[T]:
    """Adapt a keyword-argument constructor into a ``factory(options)``.

    Unknown option keys and missing required ones raise :class:`ConfigError` naming the
    key and the valid ones, instead of a ``TypeError`` deep inside a plugin.
    """
    signature = inspect.signature(constructor)
    params = {
        name: p
        for name, p in signature.parameters.items()
        if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD) and name != "self"
    }
    label = getattr(constructor, "__qualname__", repr(constructor))

    def factory(options: dict[str, Any]) -> T:
        unknown = sorted(set(options) - set(params))
        if unknown:
            raise ConfigError(
                f"unknown option {unknown[0]!r} for {label}", key="options." + unknown[0], choices=sorted(params)
            )
        missing = sorted(n for n, p in params.items() if p.default is p.empty and n not in options)
        if missing:
            raise ConfigError(f"missing required option {missing[0]!r} for {label}", key="options." + missing[0])
        try:
            return constructor(**options)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"invalid options for {label}: {exc}", key="options") from exc

    factory.__doc__ = constructor.__doc__
    factory.__name__ = f"{label}_factory"
    return factory
