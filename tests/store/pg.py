"""A throwaway PostgreSQL cluster for the tests: ``initdb`` + ``pg_ctl`` as an
unprivileged user in a temporary folder, listening only on a Unix socket in
that folder (no TCP port at all), trust authentication, removed at the end.

Run as root, the cluster belongs to the ``postgres`` system user that Debian's
``postgresql`` package creates (PostgreSQL refuses to run as root).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import URL

SUPERUSER = "fleetscan"


def find_pg_bin() -> Path | None:
    """The newest installed server's bin folder (Debian: /usr/lib/postgresql/N/bin)."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
    )
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


@dataclass
class PgCluster:
    bindir: Path
    root: Path
    owner: str | None  # system user running the server (None: this user)

    @property
    def datadir(self) -> Path:
        return self.root / "data"

    @property
    def socket_dir(self) -> Path:
        return self.root / "sock"

    def _as_owner(self, argv: list[str]) -> list[str]:
        return ["runuser", "-u", self.owner, "--", *argv] if self.owner else argv

    def _run(self, argv: list[str], timeout: float = 60) -> None:
        proc = subprocess.run(
            self._as_owner(argv),
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
        if proc.returncode != 0:
            log = self.root / "server.log"
            tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
            raise RuntimeError(
                f"{' '.join(argv)} exited {proc.returncode}: {proc.stderr.strip()}\n{tail}"
            )

    def start(self) -> None:
        self.socket_dir.mkdir(mode=0o755)
        if self.owner:
            uid, gid = pwd.getpwnam(self.owner)[2:4]
            for p in (self.root, self.socket_dir):
                os.chown(p, uid, gid)
        self._run(
            [
                str(self.bindir / "initdb"),
                "-D",
                str(self.datadir),
                "-U",
                SUPERUSER,
                "--auth=trust",
                "--no-sync",
                "-E",
                "UTF8",
                "--locale=C",
            ]
        )
        options = (
            f"-c listen_addresses='' -c unix_socket_directories='{self.socket_dir}' "
            "-c fsync=on -c max_connections=50"
        )
        self._run(
            [
                str(self.bindir / "pg_ctl"),
                "-D",
                str(self.datadir),
                "-l",
                str(self.root / "server.log"),
                "-o",
                options,
                "-w",
                "-t",
                "60",
                "start",
            ],
            timeout=90,
        )

    def stop(self) -> None:
        if (self.datadir / "postmaster.pid").exists():
            subprocess.run(
                self._as_owner(
                    [
                        str(self.bindir / "pg_ctl"),
                        "-D",
                        str(self.datadir),
                        "-m",
                        "fast",
                        "-w",
                        "stop",
                    ]
                ),
                capture_output=True,
                timeout=60,
                check=False,
            )
        shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str = "postgres") -> URL:
        return URL.create(
            "postgresql+psycopg",
            username=SUPERUSER,
            database=database,
            query={"host": str(self.socket_dir)},
        )

    def create_database(self, name: str) -> URL:
        import psycopg

        with psycopg.connect(
            host=str(self.socket_dir), user=SUPERUSER, dbname="postgres", autocommit=True
        ) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')  # name made by the tests: [a-z0-9_]
        return self.url(name)


def start_cluster() -> PgCluster:
    bindir = find_pg_bin()
    if bindir is None:
        raise RuntimeError("no initdb (install postgresql: scripts/test-deps.sh does it)")
    owner: str | None = None
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            raise RuntimeError(
                "running as root and there is no postgres user to run the server"
            ) from None
        owner = "postgres"
    root = Path(tempfile.mkdtemp(prefix="fleetscan-pg-"))
    root.chmod(0o755)
    cluster = PgCluster(bindir, root, owner)
    try:
        cluster.start()
    except BaseException:
        cluster.stop()
        raise
    return cluster
