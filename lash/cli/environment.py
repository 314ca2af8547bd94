"""What lash runs with: ``lash plugins``, ``lash config`` and ``lash config check``."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from typing import Any

import lash
from lash.cli.context import config_of
from lash.cli.output import Output
from lash.config import ENV_VAR, config_to_dict
from lash.plugins import PluginManager, Registry


def register(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    json_flag = argparse.ArgumentParser(add_help=False)
    json_flag.add_argument("--json", action="store_true", help="print JSON for scripts")

    plugins = subparsers.add_parser(
        "plugins", parents=[*parents, json_flag], help="installed plugins and what each registers"
    )
    plugins.set_defaults(func=plugins_command)

    config = subparsers.add_parser(
        "config", parents=[*parents, json_flag], help="the effective configuration and where it came from"
    )
    config.set_defaults(func=config_command)
    actions = config.add_subparsers(title="actions", metavar="ACTION")
    check = actions.add_parser(
        "check",
        parents=[*parents, json_flag],
        help="validate the config and open its backend; exit 1 naming the problem",
    )
    check.set_defaults(func=config_check_command)


# --- lash plugins ------------------------------------------------------------------------


def _registrations(manager: PluginManager) -> Iterator[tuple[str, str, str]]:
    """(plugin, kind, name) of everything registered."""
    registries: tuple[Registry[Any], ...] = (
        manager.backends,
        manager.blob_stores,
        manager.compactors,
        manager.key_providers,
    )
    for registry in registries:
        for entry in registry.entries():
            yield entry.plugin, registry.kind, entry.name


def plugins_command(args: argparse.Namespace, out: Output) -> int:
    config = config_of(args)
    # The registries a handle would have, without opening its backend (no files are created).
    manager = PluginManager(disable=config.plugins.disable)
    distributions = manager.distributions()
    registers: dict[str, dict[str, list[str]]] = {name: {} for name in manager.plugin_names()}
    for plugin, kind, name in _registrations(manager):
        registers.setdefault(plugin, {}).setdefault(kind, []).append(name)
    rows = []
    for plugin, kinds in registers.items():
        dist, version = distributions.get(plugin, ("lash (built-in)", lash.__version__))
        rows.append({"plugin": plugin, "distribution": dist, "version": version, "registers": kinds})
    if out.json_mode:
        out.json({"plugins": rows, "disabled": config.plugins.disable})
        return 0
    out.table(
        ["plugin", "distribution", "version", "registers"],
        (
            [
                r["plugin"],
                r["distribution"],
                r["version"],
                "; ".join(f"{kind}: {', '.join(names)}" for kind, names in r["registers"].items()) or "hooks only",
            ]
            for r in rows
        ),
    )
    if config.plugins.disable:
        out.line(f"disabled by config: {', '.join(config.plugins.disable)}")
    return 0


# --- lash config -------------------------------------------------------------------------


def config_command(args: argparse.Namespace, out: Output) -> int:
    config = config_of(args)
    data = config_to_dict(config)
    source = str(config.source) if config.source else None
    if out.json_mode:
        out.json({"source": source, "config": data})
        return 0
    if source:
        out.line(f"# from {source}", style="dim")
    else:
        out.line(f"# built-in defaults (no --config, ${ENV_VAR}, lash.toml or [tool.lash] found)", style="dim")
    out.line(to_toml(data))
    return 0


def config_check_command(args: argparse.Namespace, out: Output) -> int:
    config = config_of(args)
    with lash.open(config) as handle:
        backend, strategy = handle.config.store.backend, handle.config.compaction.strategy
    if out.json_mode:
        out.json(
            {
                "ok": True,
                "source": str(config.source) if config.source else None,
                "backend": backend,
                "blobs": config.blobs.backend if config.blobs else None,
                "compaction": strategy,
            }
        )
        return 0
    where = config.source or "built-in defaults"
    blobs = f", blobs {config.blobs.backend}" if config.blobs else ""
    out.line(f"ok: {where}: backend {backend}{blobs}, compaction {strategy}")
    return 0


def to_toml(data: dict[str, dict[str, Any]]) -> str:
    """Config sections as TOML (tables of scalars, lists and inline tables)."""
    sections = []
    for section, body in data.items():
        lines = [f"[{section}]", *(f"{key} = {_toml_value(value)}" for key, value in body.items())]
        sections.append("\n".join(lines))
    return "\n\n".join(sections)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        if not value:
            return "{}"
        return "{ " + ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


def _toml_key(key: str) -> str:
    return key if key.replace("_", "").replace("-", "").isalnum() else json.dumps(key)
