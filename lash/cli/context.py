"""What every command needs: the effective config, an open handle, a session read by id."""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator
from contextlib import contextmanager

import lash
from lash.config import ENV_VAR, LashConfig, load_config
from lash.errors import ConfigError, LashError
from lash.model import FullGraph, ReadScope, SessionMeta, SessionRead


class CliError(LashError):
    """A command refused its input (unknown session, existing target, missing --yes)."""


def config_of(args: argparse.Namespace) -> LashConfig:
    """``--config PATH`` if given, else lash's normal lookup."""
    explicit = getattr(args, "config", None)
    try:
        return load_config(explicit)
    except ConfigError as exc:
        if explicit is None and os.environ.get(ENV_VAR):
            exc.add_note(f"the path came from ${ENV_VAR}")
        raise


@contextmanager
def opened(args: argparse.Namespace) -> Iterator[lash.Lash]:
    """A handle on the effective config, closed when the command ends."""
    with lash.open(config_of(args)) as handle:
        yield handle


def read_session(
    handle: lash.Lash, session_id: str, scope: ReadScope = FullGraph()
) -> tuple[SessionRead | None, SessionMeta | None]:
    """The committed state (None before the first commit) and meta of a session that must exist."""
    store = handle.backend.open_session(session_id, create=False)
    if store is None:
        raise CliError(f"no session {session_id!r} in {describe_store(handle.config)} (`lash sessions` lists them)")
    try:
        return store.load_session(scope), store.load_meta()
    finally:
        store.close()


def require_session(handle: lash.Lash, session_id: str) -> None:
    """Raise the 'no session' error unless ``session_id`` exists."""
    read_session(handle, session_id)


def describe_store(config: LashConfig) -> str:
    """``sqlite store at .lash/sessions`` — where the configured sessions live."""
    where = config.store.options.get("path") or config.store.options.get("bucket")
    return f"{config.store.backend} store" + (f" at {where}" if where else "")
