"""Shared fixtures: the real Xi'an data in ../shared (skipped where absent) and the demo."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("PLANNER_SHARED", ROOT.parent / "shared"))
XIAN = SHARED / "data" / "xian"
ORLIB = SHARED / "bench" / "orlib"
DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def xian_dir() -> Path:
    """The real central Xi'an data; skips the test where ../shared is absent."""
    if not (XIAN / "xian_road.kml").is_file():
        pytest.skip(f"real Xi'an data not found at {XIAN} (../shared is absent in a fresh clone)")
    return XIAN


@pytest.fixture(scope="session")
def orlib_dir() -> Path:
    """OR-Library pmed instances; skips where ../shared is absent."""
    if not (ORLIB / "pmed1.txt").is_file():
        pytest.skip(f"OR-Library instances not found at {ORLIB} (../shared is absent)")
    return ORLIB


def _pg_bindir() -> Path | None:
    import glob
    import shutil
    import subprocess

    cfg = shutil.which("pg_config")
    if cfg:
        try:
            out = subprocess.run([cfg, "--bindir"], capture_output=True, text=True, timeout=10)
            if (Path(out.stdout.strip()) / "initdb").is_file():
                return Path(out.stdout.strip())
        except (OSError, subprocess.SubprocessError):
            pass
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


def _postgis_installed(bindir: Path) -> bool:
    import glob

    version = bindir.parent.name  # /usr/lib/postgresql/15/bin -> 15
    return bool(glob.glob(f"/usr/share/postgresql/{version}/extension/postgis.control")
                or glob.glob("/usr/share/postgresql/*/extension/postgis.control")
                or glob.glob("/usr/local/share/postgresql/extension/postgis.control"))


@pytest.fixture(scope="session")
def postgis_url():
    """A real PostgreSQL + PostGIS server started for the test session (never a mock).

    A throw-away cluster in a temporary folder, reached over its Unix socket
    only; as root it runs as the ``postgres`` user (PostgreSQL refuses root).
    Skips, saying why, where PostgreSQL or PostGIS is not installed
    (``apt-get install postgresql postgis``; ``.ci/run`` installs them when root).
    """
    import os
    import random
    import shutil
    import subprocess
    import tempfile

    bindir = _pg_bindir()
    if bindir is None:
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql postgis; "
                    ".ci/run installs them when root)")
    if not _postgis_installed(bindir):
        pytest.skip("PostGIS is not installed (apt-get install postgis)")
    psycopg = pytest.importorskip("psycopg", reason="psycopg is not installed")
    root = Path(tempfile.mkdtemp(prefix="planner-pg-"))
    data = root / "data"
    prefix: list[str] = []
    if os.geteuid() == 0:
        runuser = shutil.which("runuser")
        if runuser is None:
            pytest.skip("running as root without runuser: cannot start PostgreSQL as postgres")
        os.chmod(root, 0o755)
        shutil.chown(root, "postgres")
        prefix = [runuser, "-u", "postgres", "--"]
    port = random.randint(20000, 40000)

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([*prefix, *args], capture_output=True, text=True, timeout=120)

    init = run(str(bindir / "initdb"), "-D", str(data), "-U", "planner", "--auth=trust",
               "-E", "UTF8", "--locale=C")
    if init.returncode != 0:
        shutil.rmtree(root, ignore_errors=True)
        pytest.skip(f"initdb failed: {init.stderr.strip()[-300:]}")
    start = run(str(bindir / "pg_ctl"), "-D", str(data), "-l", str(root / "log"), "-w", "-o",
                f"-k {root} -p {port} -c listen_addresses=''", "start")
    if start.returncode != 0:
        shutil.rmtree(root, ignore_errors=True)
        pytest.skip(f"PostgreSQL did not start: {start.stderr.strip()[-300:]}")
    try:
        base = f"postgresql://planner@/%s?host={root}&port={port}"
        with psycopg.connect(base % "postgres", autocommit=True) as con:
            con.execute("CREATE DATABASE planner_test")
        with psycopg.connect(base % "planner_test", autocommit=True) as con:
            con.execute("CREATE EXTENSION postgis")
        yield base % "planner_test"
    finally:
        run(str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop")
        shutil.rmtree(root, ignore_errors=True)
