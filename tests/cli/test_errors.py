"""Failures end with exit code 1 and one ``lash: error:`` line on stderr, never a traceback."""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from lash.cli import build_parser, main

from .conftest import HAS_SQLITE, sqlite_config

Run = Callable[..., subprocess.CompletedProcess[str]]

SESSION_COMMANDS = (
    ["show", "{id}"],
    ["show", "{id}", "--frame"],
    ["usage", "{id}"],
    ["prune", "{id}"],
    ["delete", "{id}", "--yes"],
    ["export", "{id}", "-o", "out.lash"],
)
"""Every command that takes a session id."""

HOSTILE_IDS = ("../../escaped", "a\nmulti-line id", "$(touch pwned); DROP TABLE nodes", "x" * 2000, "ghost ")


def assert_one_error_line(done: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert done.returncode == 1, done.stdout
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("lash: error: ")
    assert "Traceback" not in done.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def subcommands() -> list[list[str]]:
    """Every ``lash`` subcommand, nested ones (``config check``) included, as argv prefixes."""

    def walk(parser: argparse.ArgumentParser, prefix: list[str]) -> list[list[str]]:
        found = []
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    found += [[*prefix, name], *walk(sub, [*prefix, name])]
        return found

    return walk(build_parser(), [])


def test_every_subcommand_has_help(capsys: pytest.CaptureFixture[str], lash_cli: Run) -> None:
    commands = subcommands()
    assert {"demo", "sessions", "show", "usage", "gc", "prune", "delete", "export", "import", "migrate"} <= {
        c[0] for c in commands
    }
    assert ["config", "check"] in commands
    for command in commands:
        with pytest.raises(SystemExit) as exited:
            main([*command, "--help"])
        assert exited.value.code == 0
        assert f"usage: lash {' '.join(command)}" in capsys.readouterr().out
    top = lash_cli("--help")
    assert top.returncode == 0 and all(c[0] in top.stdout for c in commands)


def test_unknown_session_is_a_one_line_error(lash_cli: Run, memory_config: Path) -> None:
    # every command that takes a session id: test_hostile_session_ids_are_data_not_paths
    for command in (["show", "ghost"], ["delete", "ghost", "--yes"]):
        done = lash_cli("--config", str(memory_config), *command)
        assert_one_error_line(done, "no session 'ghost'", "lash sessions")


@pytest.mark.skipif(not HAS_SQLITE, reason="lash-sqlite is not installed")
def test_hostile_session_ids_are_data_not_paths(
    lash_cli: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    sqlite_config(work / "lash.toml", "sessions")
    assert_one_error_line(lash_cli("show", "../../escaped", cwd=work), "no session '../../escaped'")
    monkeypatch.chdir(work)  # the whole matrix in-process: same code path, without 30 interpreter starts
    monkeypatch.delenv("LASH_CONFIG", raising=False)
    for session_id in HOSTILE_IDS:
        for command in SESSION_COMMANDS:
            code = main([part.format(id=session_id) for part in command])
            done = subprocess.CompletedProcess(command, code, "", capsys.readouterr().err)
            if len(session_id) > 1024:
                assert_one_error_line(done, "longer than 1024 characters")
            else:
                assert_one_error_line(done, f"no session {session_id!r}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["work"]  # nothing escaped
    assert not (work / "sessions").exists() or not any((work / "sessions").iterdir())  # reads created nothing


@pytest.mark.skipif(not HAS_SQLITE, reason="lash-sqlite is not installed")
def test_an_archive_imported_under_a_hostile_id_stays_inside_the_store(
    demo_dir: Path, lash_cli: Run, tmp_path: Path
) -> None:
    work = shutil.copytree(demo_dir, tmp_path / "work")
    exported = json.loads(lash_cli("export", "demo.researcher", "-o", "r.lash", "--json", cwd=work).stdout)
    assert exported["session_id"] == "demo.researcher" and exported["blobs"] >= 2
    imported = lash_cli("import", "r.lash", "--as", "../../escaped", "--json", cwd=work)
    assert imported.returncode == 0, imported.stderr
    deleted = lash_cli("delete", "../../escaped", "--yes", "--json", cwd=work)  # it was stored under that id
    assert json.loads(deleted.stdout) == {"session_id": "../../escaped", "deleted": True, "kept_children": []}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["work"]


def test_unknown_backend_names_it_and_what_is_installed(lash_cli: Run, tmp_path: Path) -> None:
    config = tmp_path / "lash.toml"
    config.write_text('[store]\nbackend = "nosuch"\n', encoding="utf-8")
    for command in (["sessions"], ["migrate", "--to", str(config)]):
        done = lash_cli(*command)  # found by the normal lookup in the working directory
        assert_one_error_line(done, "no backend named 'nosuch'", "memory", str(config))


def test_malformed_toml_names_the_file(lash_cli: Run, tmp_path: Path) -> None:
    config = tmp_path / "broken.toml"
    config.write_text("[store\nbackend = 1\n", encoding="utf-8")
    for command in (["config"], ["plugins"]):
        assert_one_error_line(lash_cli(*command, "--config", str(config)), str(config), "malformed TOML")


def test_missing_config_file_is_a_one_line_error(lash_cli: Run, tmp_path: Path, memory_config: Path) -> None:
    missing = tmp_path / "nowhere.toml"
    assert_one_error_line(lash_cli("sessions", "--config", str(missing)), str(missing), "file not found")
    from_env = lash_cli("sessions", env={"LASH_CONFIG": str(missing)})
    assert_one_error_line(from_env, str(missing), "file not found", "$LASH_CONFIG")
    to_missing = lash_cli("migrate", "--config", str(memory_config), "--to", str(missing))
    assert_one_error_line(to_missing, str(missing), "file not found")


def test_config_check_reports_a_bad_option_and_passes_a_good_config(
    lash_cli: Run, tmp_path: Path, memory_config: Path
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[store]\nbackend = "memory"\noptions = { colour = "blue" }\n', encoding="utf-8")
    assert_one_error_line(lash_cli("config", "check", "--config", str(bad)), "colour", "blob_profile")

    good = lash_cli("config", "check", "--config", str(memory_config))
    assert good.returncode == 0, good.stderr
    assert good.stdout.startswith("ok: ")
    checked = json.loads(lash_cli("config", "check", "--json", "--config", str(memory_config)).stdout)
    assert checked == {
        "ok": True,
        "source": str(memory_config.resolve()),
        "backend": "memory",
        "blobs": None,
        "compaction": "keep-recent",
    }


def test_missing_archive_file_is_a_one_line_error(lash_cli: Run, memory_config: Path, tmp_path: Path) -> None:
    archive = tmp_path / "missing.lash"
    done = lash_cli("import", str(archive), "--config", str(memory_config))
    assert_one_error_line(done, str(archive))
    not_an_archive = tmp_path / "notes.txt"
    not_an_archive.write_text("hello", encoding="utf-8")
    assert_one_error_line(lash_cli("import", str(not_an_archive), "--config", str(memory_config)), "archive")


def test_usage_errors_exit_2_with_help(lash_cli: Run) -> None:
    done = lash_cli("show")
    assert done.returncode == 2
    assert "usage: lash show" in done.stderr
