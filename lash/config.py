"""TOML configuration: where it is found, what it may say, and validation that names the key.

Lookup order: an explicit path or dict → ``$LASH_CONFIG`` → ``lash.toml`` or the
``[tool.lash]`` table of a ``pyproject.toml`` in the working directory or its parents →
defaults (SQLite under ``.lash/sessions``). Relative paths in ``options`` (keys ``path``,
``*_path``, ``*_dir``) are resolved against the directory of the file that set them.
"""

from __future__ import annotations

import enum
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NewType

import attrs
import cattrs

from lash.errors import ConfigError

ENV_VAR = "LASH_CONFIG"
DEFAULT_SESSIONS_PATH = ".lash/sessions"


@attrs.frozen
class StoreSection:
    """``[store]``: which backend keeps heads and nodes."""

    backend: str = "sqlite"
    options: dict[str, Any] = attrs.field(factory=dict)


@attrs.frozen
class BlobsSection:
    """``[blobs]``: an optional separate blob store (e.g. S3) for every session's blobs."""

    backend: str
    options: dict[str, Any] = attrs.field(factory=dict)


@attrs.frozen
class CompactionSection:
    """``[compaction]``: the strategy :meth:`lash.Session.compact` runs."""

    strategy: str = "keep-recent"
    options: dict[str, Any] = attrs.field(factory=dict)


@attrs.frozen
class GcSection:
    """``[gc]``: automatic blob collection (0 turns it off) and the shared-store grace period."""

    auto_every_commits: int = 100
    grace_seconds: int | None = None
    """Blobs of a shared store younger than this survive GC (None: the backend's default)."""


_DURATION = re.compile(r"([1-9][0-9]*)([smhdw])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}
DURATION_FORMAT = "a whole number and one unit: s, m, h, d or w (e.g. '45s', '90m', '12h', '30d', '2w')"


@attrs.frozen
class Duration:
    """A span written like ``"30d"`` in config; ``seconds`` is what the code uses."""

    text: str
    seconds: int

    @classmethod
    def parse(cls, text: str) -> Duration:
        match = _DURATION.fullmatch(text.strip())
        if match is None:
            raise ValueError(f"{text!r} is not a duration: expected {DURATION_FORMAT}")
        return cls(text.strip(), int(match[1]) * _UNIT_SECONDS[match[2]])


PositiveInt = NewType("PositiveInt", int)
"""An int ≥ 1 (config values where 0 would mean "delete everything")."""


class OrphanedBranches(enum.StrEnum):
    """What retention does with branches off a session's active path."""

    KEEP = "keep"
    PRUNE = "prune"


@attrs.frozen
class RetentionSection:
    """``[retention]``: how long data lives (see :mod:`lash.retention`); every key optional."""

    max_age: Duration | None = None
    """Delete whole sessions whose last commit is older than this."""
    keep_frames: PositiveInt | None = None
    """Tombstone off-path nodes of compaction frames older than the newest N."""
    max_sessions: PositiveInt | None = None
    """Keep the N most recently committed sessions, delete the rest."""
    orphaned_branches: OrphanedBranches = OrphanedBranches.KEEP
    """``prune``: tombstone every node off the active path, then vacuum."""


@attrs.frozen
class EncryptionSection:
    """``[encryption]``: seal records and blobs with keys from a key provider (see :mod:`lash.encryption`).

    Only the provider's name and where it finds keys live here: never key material.
    """

    key_provider: str
    key_id: str = "default"
    """The master key new data is written with; data under other ids stays readable while the provider has them."""
    options: dict[str, Any] = attrs.field(factory=dict)


@attrs.frozen
class PluginsSection:
    """``[plugins]``: plugin names (entry-point names) not to load."""

    disable: list[str] = attrs.field(factory=list)


@attrs.frozen
class LashConfig:
    """The whole configuration. ``source`` is the file it came from (None: dict/defaults)."""

    store: StoreSection = StoreSection("sqlite", {"path": DEFAULT_SESSIONS_PATH})
    blobs: BlobsSection | None = None
    compaction: CompactionSection = CompactionSection()
    gc: GcSection = GcSection()
    plugins: PluginsSection = PluginsSection()
    retention: RetentionSection | None = None
    encryption: EncryptionSection | None = None
    source: Path | None = None


_SECTIONS: dict[str, type] = {
    "store": StoreSection,
    "blobs": BlobsSection,
    "compaction": CompactionSection,
    "gc": GcSection,
    "plugins": PluginsSection,
    "retention": RetentionSection,
    "encryption": EncryptionSection,
}

_converter = cattrs.Converter(forbid_extra_keys=True)


def _strict(kind: type) -> Any:
    """A structure hook that refuses values of another type instead of coercing them."""

    def hook(value: Any, _: type) -> Any:
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise TypeError(f"expected {kind.__name__}, got {type(value).__name__} {value!r}")
        return value

    return hook


for _kind in (str, int, bool):
    _converter.register_structure_hook(_kind, _strict(_kind))
_converter.register_structure_hook_func(
    lambda t: t == list[str], lambda v, t: [_strict(str)(x, str) for x in _strict(list)(v, list)]
)
_converter.register_structure_hook_func(lambda t: t == dict[str, Any], lambda v, t: dict(_strict(dict)(v, dict)))
_converter.register_structure_hook(Duration, lambda v, _: Duration.parse(_strict(str)(v, str)))
_converter.register_unstructure_hook(Duration, lambda d: d.text)


def _positive_int(value: Any, _: type) -> int:
    if _strict(int)(value, int) < 1:
        raise ValueError(f"must be an integer ≥ 1, got {value}")
    return value


def _orphaned_branches(value: Any, _: type) -> OrphanedBranches:
    choices = [c.value for c in OrphanedBranches]
    if _strict(str)(value, str) not in choices:
        raise ValueError(f"must be one of {', '.join(repr(c) for c in choices)}, got {value!r}")
    return OrphanedBranches(value)


_converter.register_structure_hook(PositiveInt, _positive_int)
_converter.register_structure_hook(OrphanedBranches, _orphaned_branches)
_converter.register_unstructure_hook(OrphanedBranches, lambda v: v.value)


def _describe(exc: BaseException, _: Any) -> str:
    return "required key is missing" if isinstance(exc, KeyError) else str(exc)


def _check_shape(data: Mapping[str, Any], source: Path | None) -> None:
    """Unknown sections and keys, reported with the valid choices."""
    for section, body in data.items():
        if section not in _SECTIONS:
            raise ConfigError(f"unknown section [{section}]", path=source, key=section, choices=sorted(_SECTIONS))
        if not isinstance(body, Mapping):
            raise ConfigError(f"[{section}] must be a table", path=source, key=section)
        known = [f.name for f in attrs.fields(_SECTIONS[section])]
        for key in body:
            if key not in known:
                raise ConfigError(f"unknown key {key!r}", path=source, key=f"{section}.{key}", choices=known)


def _error_key(exc: BaseException) -> tuple[str, str]:
    """(dotted key, message) of the first leaf error in a cattrs validation tree."""
    messages = cattrs.transform_error(exc, format_exception=_describe)  # "msg @ $.gc.x"
    first = messages[0] if messages else str(exc)
    text, _, where = first.partition(" @ $.")
    return where or "", text


def parse_config(data: Mapping[str, Any], source: Path | None = None, base_dir: Path | None = None) -> LashConfig:
    """Validate a config mapping (the TOML document or an explicit dict)."""
    if not isinstance(data, Mapping):
        raise ConfigError("configuration must be a table/dict", path=source)
    _check_shape(data, source)
    try:
        config = _converter.structure(dict(data), LashConfig)
    except (cattrs.BaseValidationError, ValueError, TypeError) as exc:
        key, text = _error_key(exc) if isinstance(exc, cattrs.BaseValidationError) else ("", str(exc))
        raise ConfigError(text, path=source, key=key or None) from exc
    if config.gc.grace_seconds is not None and config.gc.grace_seconds < 0:
        raise ConfigError("must be a number of seconds ≥ 0", path=source, key="gc.grace_seconds")
    if config.gc.auto_every_commits < 0:
        raise ConfigError("must be 0 (off) or a positive number of commits", path=source, key="gc.auto_every_commits")
    base = base_dir or (source.parent if source else Path.cwd())
    return attrs.evolve(
        config,
        store=attrs.evolve(config.store, options=_resolve_paths(config.store.options, base)),
        blobs=config.blobs and attrs.evolve(config.blobs, options=_resolve_paths(config.blobs.options, base)),
        encryption=config.encryption
        and attrs.evolve(config.encryption, options=_resolve_paths(config.encryption.options, base)),
        source=source,
    )


def _resolve_paths(options: dict[str, Any], base: Path) -> dict[str, Any]:
    resolved = dict(options)
    for key, value in options.items():
        if (key == "path" or key.endswith(("_path", "_dir"))) and isinstance(value, str) and "://" not in value:
            path = Path(value).expanduser()
            resolved[key] = str(path if path.is_absolute() else (base / path))
    return resolved


def read_config_file(path: Path) -> LashConfig:
    """Parse ``lash.toml`` or the ``[tool.lash]`` table of a ``pyproject.toml``."""
    try:
        with path.open("rb") as fh:
            document = tomllib.load(fh)
    except FileNotFoundError as exc:
        raise ConfigError("file not found", path=path) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"malformed TOML: {exc}", path=path) from exc
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc}", path=path) from exc
    if path.name == "pyproject.toml":
        document = document.get("tool", {}).get("lash", {})
    return parse_config(document, source=path.resolve())


def find_config_file(start: Path | None = None) -> Path | None:
    """The nearest ``lash.toml`` or ``pyproject.toml`` with ``[tool.lash]``, from ``start`` upwards."""
    here = (start or Path.cwd()).resolve()
    for directory in (here, *here.parents):
        candidate = directory / "lash.toml"
        if candidate.is_file():
            return candidate
        pyproject = directory / "pyproject.toml"
        if pyproject.is_file():
            try:
                with pyproject.open("rb") as fh:
                    if "lash" in tomllib.load(fh).get("tool", {}):
                        return pyproject
            except (OSError, tomllib.TOMLDecodeError):
                continue
    return None


def load_config(config: LashConfig | Mapping[str, Any] | str | os.PathLike[str] | None = None) -> LashConfig:
    """The effective configuration, following the lookup order of this module."""
    if isinstance(config, LashConfig):
        return config
    if isinstance(config, Mapping):
        return parse_config(config)
    if config is not None:
        return read_config_file(Path(config))
    env = os.environ.get(ENV_VAR)
    if env:
        return read_config_file(Path(env))
    found = find_config_file()
    return read_config_file(found) if found else parse_config({})


def config_to_dict(config: LashConfig) -> dict[str, Any]:
    """The configuration as plain TOML-shaped data (for ``lash config`` and exports)."""
    data = _converter.unstructure(config)
    data.pop("source", None)
    # TOML has no null: an unset section or key is simply absent.
    return {
        section: {key: value for key, value in body.items() if value is not None}
        for section, body in data.items()
        if body is not None
    }
