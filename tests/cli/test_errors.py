"""Failures end with exit code 1 and one ``lash: error:`` line on stderr, never a traceback."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

Run = Callable[..., subprocess.CompletedProcess[str]]


def assert_one_error_line(done: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert done.returncode == 1
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("lash: error: ")
    for fragment in fragments:
        assert fragment in lines[0]


def test_unknown_session_is_a_one_line_error(lash_cli: Run, memory_config: Path) -> None:
    for command in (["show", "ghost"], ["export", "ghost", "-o", "x.lash"]):
        done = lash_cli("--config", str(memory_config), *command)
        assert_one_error_line(done, "no session 'ghost'")


def test_unknown_backend_names_it_and_what_is_installed(lash_cli: Run, tmp_path: Path) -> None:
    config = tmp_path / "lash.toml"
    config.write_text('[store]\nbackend = "nosuch"\n', encoding="utf-8")
    done = lash_cli("sessions")  # found by the normal lookup in the working directory
    assert_one_error_line(done, "no backend named 'nosuch'", "memory", str(config))


def test_malformed_toml_names_the_file(lash_cli: Run, tmp_path: Path) -> None:
    config = tmp_path / "broken.toml"
    config.write_text("[store\nbackend = 1\n", encoding="utf-8")
    done = lash_cli("sessions", "--config", str(config))
    assert_one_error_line(done, str(config), "malformed TOML")


def test_config_check_reports_a_bad_option_and_passes_a_good_config(
    lash_cli: Run, tmp_path: Path, memory_config: Path
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[store]\nbackend = "memory"\noptions = { colour = "blue" }\n', encoding="utf-8")
    assert_one_error_line(lash_cli("config", "check", "--config", str(bad)), "colour", "blob_profile")

    good = lash_cli("config", "check", "--config", str(memory_config))
    assert good.returncode == 0, good.stderr
    assert good.stdout.startswith("ok: ")


def test_missing_archive_file_is_a_one_line_error(lash_cli: Run, memory_config: Path, tmp_path: Path) -> None:
    archive = tmp_path / "missing.lash"
    done = lash_cli("import", str(archive), "--config", str(memory_config))
    assert_one_error_line(done, str(archive))


def test_usage_errors_exit_2_with_help(lash_cli: Run) -> None:
    done = lash_cli("show")
    assert done.returncode == 2
    assert "usage: lash show" in done.stderr
