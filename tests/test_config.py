"""Config lookup and validation: found where documented, errors that name file and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from lash.config import ENV_VAR, load_config
from lash.errors import ConfigError

MEMORY = '[store]\nbackend = "memory"\n'


@pytest.fixture(autouse=True)
def _no_env_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_lash_toml_in_working_directory_is_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = write(tmp_path / "lash.toml", MEMORY)
    monkeypatch.chdir(tmp_path)
    config = load_config()
    assert config.store.backend == "memory"
    assert config.source == source.resolve()


def test_pyproject_tool_lash_is_found_from_a_subdirectory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path / "pyproject.toml", '[project]\nname = "app"\n\n[tool.lash.store]\nbackend = "memory"\n')
    (tmp_path / "src" / "pkg").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "src" / "pkg")
    config = load_config()
    assert config.store.backend == "memory"
    assert config.source == (tmp_path / "pyproject.toml").resolve()


def test_pyproject_without_tool_lash_is_skipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path / "lash.toml", MEMORY)
    write(tmp_path / "sub" / "pyproject.toml", '[project]\nname = "app"\n')
    monkeypatch.chdir(tmp_path / "sub")
    assert load_config().source == (tmp_path / "lash.toml").resolve()


def test_env_var_wins_over_the_working_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path / "lash.toml", '[store]\nbackend = "from-cwd"\n')
    chosen = write(tmp_path / "elsewhere" / "custom.toml", MEMORY)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(ENV_VAR, str(chosen))
    config = load_config()
    assert (config.store.backend, config.source) == ("memory", chosen.resolve())


def test_explicit_dict_and_path_win_over_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_VAR, str(write(tmp_path / "env.toml", '[store]\nbackend = "from-env"\n')))
    assert load_config({"store": {"backend": "memory"}}).store.backend == "memory"
    explicit = write(tmp_path / "explicit.toml", '[store]\nbackend = "explicit"\n')
    assert load_config(explicit).store.backend == "explicit"
    assert load_config(str(explicit)).store.backend == "explicit"


def test_relative_path_option_resolves_against_the_config_files_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = write(
        tmp_path / "project" / "lash.toml",
        '[store]\nbackend = "sqlite"\noptions = { path = "data/sessions", blob_profile = "compact" }\n',
    )
    monkeypatch.chdir(tmp_path)
    options = load_config(source).store.options
    assert Path(options["path"]) == (tmp_path / "project" / "data" / "sessions").resolve()
    assert options["blob_profile"] == "compact"


def test_url_and_absolute_paths_are_kept(tmp_path: Path) -> None:
    absolute = tmp_path / "abs"
    source = write(
        tmp_path / "lash.toml",
        f'[store]\nbackend = "x"\noptions = {{ path = "{absolute.as_posix()}", db_path = "s3://bucket/key" }}\n',
    )
    options = load_config(source).store.options
    assert (Path(options["path"]), options["db_path"]) == (absolute, "s3://bucket/key")


def test_malformed_toml_names_the_file(tmp_path: Path) -> None:
    source = write(tmp_path / "lash.toml", "[store\nbackend = ")
    with pytest.raises(ConfigError, match="malformed TOML") as info:
        load_config(source)
    assert str(source) in str(info.value)
    assert info.value.path == source


def test_missing_explicit_file_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found") as info:
        load_config(tmp_path / "absent.toml")
    assert "absent.toml" in str(info.value)


def test_unknown_section_lists_the_valid_sections(tmp_path: Path) -> None:
    source = write(tmp_path / "lash.toml", MEMORY + '[stroe]\nbackend = "x"\n')
    with pytest.raises(ConfigError) as info:
        load_config(source)
    message = str(info.value)
    assert "stroe" in message and str(source.resolve()) in message
    assert set(info.value.choices) == {"store", "blobs", "compaction", "gc", "plugins", "retention", "encryption"}
    assert "store" in message and "compaction" in message


def test_unknown_key_lists_the_valid_keys(tmp_path: Path) -> None:
    source = write(tmp_path / "lash.toml", '[store]\nbackend = "memory"\nbackedn = "x"\n')
    with pytest.raises(ConfigError) as info:
        load_config(source)
    assert info.value.key == "store.backedn"
    assert set(info.value.choices) == {"backend", "options"}
    assert "backedn" in str(info.value) and str(source.resolve()) in str(info.value)


@pytest.mark.parametrize(
    ("toml", "key"),
    [
        ('[gc]\nauto_every_commits = "often"\n', "gc.auto_every_commits"),
        ("[gc]\nauto_every_commits = true\n", "gc.auto_every_commits"),
        ("[store]\nbackend = 3\n", "store.backend"),
        ('[plugins]\ndisable = "memory"\n', "plugins.disable"),
        ('[store]\nbackend = "memory"\noptions = "path"\n', "store.options"),
    ],
    ids=["str-for-int", "bool-for-int", "int-for-str", "str-for-list", "str-for-table"],
)
def test_wrong_type_names_the_key_and_the_file(tmp_path: Path, toml: str, key: str) -> None:
    source = write(tmp_path / "lash.toml", toml)
    with pytest.raises(ConfigError) as info:
        load_config(source)
    assert info.value.key == key
    assert key in str(info.value) and str(source.resolve()) in str(info.value)


def test_negative_gc_interval_is_refused() -> None:
    with pytest.raises(ConfigError) as info:
        load_config({"gc": {"auto_every_commits": -1}})
    assert info.value.key == "gc.auto_every_commits"


def test_section_that_is_not_a_table_is_refused() -> None:
    with pytest.raises(ConfigError) as info:
        load_config({"store": "memory"})
    assert info.value.key == "store"


def test_explicit_dict_errors_say_where_they_came_from() -> None:
    with pytest.raises(ConfigError, match="<config>"):
        load_config({"nope": {}})
