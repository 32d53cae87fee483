"""Settings from the environment: typed readers, the generated secret key, SQLite tuning, docs."""

import ast
import importlib.util
import json
import re
import stat
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
from django.core.exceptions import ImproperlyConfigured

from rivya_dashboard.env import (
    env_bool,
    env_choice,
    env_int,
    env_list,
    env_secret,
    env_str,
    generated_secret_file,
)
from tests.conftest import subprocess_env

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "rivya_dashboard"
ENV_HELPERS = {"env_bool", "env_choice", "env_int", "env_str", "env_list", "env_secret"}


def load_settings(monkeypatch, **env: str) -> ModuleType:
    """Execute settings.py afresh under `env`, without touching the running Django settings."""
    for inherited in ("DATABASE_URL", "DATABASE_URL_FILE", "SECRET_KEY", "SECRET_KEY_FILE"):
        monkeypatch.delenv(inherited, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    spec = importlib.util.spec_from_file_location("settings_under_test", PACKAGE / "settings.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("reader", "raw", "expected"),
    [
        (lambda: env_bool("RIVYA_T", False), "maybe", "RIVYA_T must be one of 1/0"),
        (lambda: env_int("RIVYA_T", 1), "ten", "RIVYA_T must be a whole number; got 'ten'"),
        (lambda: env_int("RIVYA_T", 1), "1.5", "RIVYA_T must be a whole number"),
        (lambda: env_int("RIVYA_T", 9, minimum=5), "4", "RIVYA_T must be at least 5; got 4"),
        (lambda: env_choice("RIVYA_T", "B", ("A", "B")), "c", "RIVYA_T must be one of A, B"),
    ],
)
def test_it_names_the_variable_when_a_value_is_malformed(monkeypatch, reader, raw, expected):
    monkeypatch.setenv("RIVYA_T", raw)

    with pytest.raises(ImproperlyConfigured, match=re.escape(expected)):
        reader()


@pytest.mark.parametrize(
    ("raw", "expected"), [("1", True), (" Yes ", True), ("on", True), ("0", False), ("off", False)]
)
def test_it_reads_booleans(monkeypatch, raw, expected):
    monkeypatch.setenv("RIVYA_T", raw)

    assert env_bool("RIVYA_T", not expected) is expected


def test_it_uses_defaults_for_unset_or_blank_values(monkeypatch):
    monkeypatch.delenv("RIVYA_T", raising=False)
    assert env_bool("RIVYA_T", True) is True
    assert env_str("RIVYA_T", "x") == "x"
    assert env_list("RIVYA_T", ["a"]) == ["a"]
    monkeypatch.setenv("RIVYA_T", " ")
    assert env_int("RIVYA_T", 7, minimum=5) == 7


def test_it_splits_lists_and_drops_empty_items(monkeypatch):
    monkeypatch.setenv("RIVYA_T", " a.example , ,b.example,")

    assert env_list("RIVYA_T", []) == ["a.example", "b.example"]


def test_env_secret_reads_the_file_named_by_name_file(monkeypatch, tmp_path):
    secret_file = tmp_path / "secret"
    secret_file.write_text("s3cret-from-file\n")
    monkeypatch.delenv("RIVYA_T", raising=False)
    monkeypatch.setenv("RIVYA_T_FILE", str(secret_file))

    assert env_secret("RIVYA_T") == "s3cret-from-file"


def test_env_secret_refuses_both_the_value_and_the_file(monkeypatch, tmp_path):
    monkeypatch.setenv("RIVYA_T", "inline")
    monkeypatch.setenv("RIVYA_T_FILE", str(tmp_path / "secret"))

    with pytest.raises(ImproperlyConfigured, match="Set either RIVYA_T or RIVYA_T_FILE"):
        env_secret("RIVYA_T")


def test_env_secret_names_an_unreadable_file(monkeypatch, tmp_path):
    monkeypatch.delenv("RIVYA_T", raising=False)
    monkeypatch.setenv("RIVYA_T_FILE", str(tmp_path / "missing"))

    with pytest.raises(ImproperlyConfigured, match=r"RIVYA_T_FILE points at .*cannot be read"):
        env_secret("RIVYA_T")


def test_generated_secret_is_private_and_reused(tmp_path):
    path = tmp_path / "data" / "secret_key"

    first = generated_secret_file(path)

    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(first) >= 50
    assert generated_secret_file(path) == first


def test_settings_generate_the_secret_key_once_in_the_data_dir(monkeypatch, tmp_path):
    first = load_settings(monkeypatch, RIVYA_DATA_DIR=str(tmp_path))
    again = load_settings(monkeypatch, RIVYA_DATA_DIR=str(tmp_path))

    key_file = tmp_path / "secret_key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert first.SECRET_KEY == again.SECRET_KEY == key_file.read_text().strip()


def test_settings_prefer_secret_key_file(monkeypatch, tmp_path):
    key_file = tmp_path / "mounted-secret"
    key_file.write_text("k" * 60)

    loaded = load_settings(
        monkeypatch, RIVYA_DATA_DIR=str(tmp_path / "data"), SECRET_KEY_FILE=str(key_file)
    )

    assert loaded.SECRET_KEY == "k" * 60
    assert not (tmp_path / "data" / "secret_key").exists()


def test_settings_read_the_log_level_in_any_case_and_refuse_an_unknown_one(monkeypatch, tmp_path):
    loaded = load_settings(monkeypatch, RIVYA_DATA_DIR=str(tmp_path), RIVYA_LOG_LEVEL="warning")
    assert loaded.LOGGING["root"]["level"] == "WARNING"
    with pytest.raises(ImproperlyConfigured, match="RIVYA_LOG_LEVEL must be one of DEBUG"):
        load_settings(monkeypatch, RIVYA_DATA_DIR=str(tmp_path), RIVYA_LOG_LEVEL="verbose")


def test_settings_refuse_a_too_short_sqlite_timeout(monkeypatch, tmp_path):
    with pytest.raises(ImproperlyConfigured, match="RIVYA_SQLITE_TIMEOUT must be at least 1"):
        load_settings(monkeypatch, RIVYA_DATA_DIR=str(tmp_path), RIVYA_SQLITE_TIMEOUT="0")


def test_database_url_switches_to_postgresql(monkeypatch, tmp_path):
    loaded = load_settings(
        monkeypatch,
        RIVYA_DATA_DIR=str(tmp_path),
        DATABASE_URL="postgres://console@db.internal:5433/rivya",
    )

    database = loaded.DATABASES["default"]
    assert database["ENGINE"] == "django.db.backends.postgresql"
    assert (database["HOST"], database["PORT"], database["NAME"]) == ("db.internal", 5433, "rivya")
    # A connection a restart cut is replaced, and a server that does not answer fails fast.
    assert database["CONN_HEALTH_CHECKS"] is True
    assert database["OPTIONS"]["connect_timeout"] == 5


def test_database_url_may_set_its_own_connect_timeout(monkeypatch, tmp_path):
    loaded = load_settings(
        monkeypatch,
        RIVYA_DATA_DIR=str(tmp_path),
        DATABASE_URL="postgres://console@db.internal/rivya?connect_timeout=12",
    )

    assert loaded.DATABASES["default"]["OPTIONS"]["connect_timeout"] == 12


# Runs in a fresh interpreter on SQLite whatever DATABASE_URL this test run uses, so the pragmas
# are read off a connection opened exactly as the console opens it.
SQLITE_PROBE = """
import json, sqlite3
import django
django.setup()
from django.db import connection, transaction

def pragma(name):
    with connection.cursor() as cursor:
        cursor.execute(f"PRAGMA {name}")
        return cursor.fetchone()[0]

found = {name: pragma(name) for name in ("journal_mode", "synchronous", "busy_timeout")}
other = sqlite3.connect(connection.settings_dict["NAME"], timeout=0)
with transaction.atomic():
    try:
        other.execute("BEGIN IMMEDIATE")
        found["write_lock_taken_at_begin"] = False
    except sqlite3.OperationalError as exc:
        found["write_lock_taken_at_begin"] = "locked" in str(exc)
print(json.dumps(found))
"""


def test_sqlite_runs_with_wal_normal_sync_busy_timeout_and_immediate_transactions(tmp_path):
    env = subprocess_env(
        RIVYA_DATA_DIR=str(tmp_path), DJANGO_SETTINGS_MODULE="rivya_dashboard.settings"
    )

    probe = subprocess.run(
        [sys.executable, "-c", SQLITE_PROBE],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert probe.returncode == 0, probe.stderr
    found = json.loads(probe.stdout.strip().splitlines()[-1])
    assert found["journal_mode"] == "wal"
    assert found["synchronous"] == 1  # NORMAL
    assert found["busy_timeout"] >= 5000
    assert found["write_lock_taken_at_begin"] is True


def env_reads() -> tuple[dict[str, set[str]], list[str]]:
    """Env helper calls in the package: {name: {helpers}}, and where a name is not a literal."""
    names: dict[str, set[str]] = {}
    unreadable = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            helper = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
            if helper not in ENV_HELPERS:
                continue
            first = node.args[0] if node.args else None
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                names.setdefault(first.value, set()).add(helper)
            elif path.name != "env.py":
                unreadable.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return names, unreadable


def readme_rows() -> dict[str, str]:
    readme = (ROOT / "README.md").read_text()
    return {m.group(1): m.group(0) for m in re.finditer(r"^\| `([A-Z0-9_]+)` \|.*$", readme, re.M)}


def test_every_env_var_read_anywhere_is_in_the_readme_table():
    names, unreadable = env_reads()
    rows = readme_rows()

    assert {"RIVYA_DATA_DIR", "SECRET_KEY", "DATABASE_URL"} <= names.keys()
    assert not unreadable, f"env helpers called with a computed name (not checkable): {unreadable}"
    missing = sorted(names.keys() - rows.keys())
    assert not missing, f"add these to the README's configuration table: {missing}"
    unmarked = sorted(
        name
        for name, helpers in names.items()
        if "env_secret" in helpers and "*secret*" not in rows[name]
    )
    assert not unmarked, f"mark these README rows *secret* (they accept NAME_FILE): {unmarked}"


def test_only_the_env_module_reads_the_environment_directly():
    direct = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "env.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            is_read = isinstance(node, ast.Call) or (
                isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load)
            )
            text = ast.unparse(node) if is_read else ""
            if re.match(r"os\.(getenv\(|environ\.get\(|environ\[)", text):
                direct.append(f"{path.relative_to(ROOT)}:{node.lineno}")

    assert not direct, (
        f"read these through rivya_dashboard.env so the README check sees them: {direct}"
    )
