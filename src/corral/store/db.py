"""Engine, sessions and migrations for SQLite (default) and PostgreSQL."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import orjson
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from corral.errors import ConfigError, StoreError
from corral.store.revision import HEAD_REVISION, MIGRATIONS
from corral.store.writegate import WriteGate

__all__ = ["HEAD_REVISION", "MIGRATIONS", "Database", "json_text"]


def _normalise(url: str) -> str:
    """postgresql:// means psycopg 3 here."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def _create_private(path: Path) -> None:
    """Create the SQLite file 0600 before SQLite does: its -wal/-shm/-journal take its mode."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        with contextlib.suppress(FileExistsError):  # another process made it meanwhile
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def json_text(value: object) -> str:
    """JSON columns' text, by orjson: a first sync encodes some 30,000 device lists, and the
    standard library's encoder was a tenth of its CPU time. Mapping keys that are not strings
    (an int) become strings, as ``json.dumps`` makes them. An int past 64 bits (a request's
    body may hold one) is past orjson: the standard library's encoder writes it."""
    try:
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()
    except orjson.JSONEncodeError:
        return json.dumps(value)


#: Connections a process keeps open, and at most holds at once. Each is kept once opened: with
#: SQLAlchemy's default (5 kept, 10 more closed as soon as they are given back), 50 API
#: clients had a server worker close and reopen connections continuously (on PostgreSQL a new
#: server process each, ~20 a second), which cost more than the pages it answered.
POOL_SIZE = 15


class Database:
    """One database: an engine, a session factory, and its migrations."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        url = _normalise(url)
        try:
            parsed = make_url(url)
        except ArgumentError:
            raise ConfigError(f"database URL {url!r} is not a valid SQLAlchemy URL.") from None
        if parsed.get_backend_name() not in ("sqlite", "postgresql"):
            raise ConfigError("Corral supports SQLite and PostgreSQL database URLs only.")
        if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
            _create_private(Path(parsed.database).expanduser())
        self.url = parsed
        self.engine: Engine = create_engine(
            url,
            echo=echo,
            future=True,
            pool_pre_ping=True,
            pool_size=POOL_SIZE,
            max_overflow=0,
            json_serializer=json_text,
            json_deserializer=orjson.loads,
        )
        if parsed.get_backend_name() == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
            WriteGate().attach(self.engine)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def backend(self) -> str:
        return self.url.get_backend_name()

    def migrate(self) -> None:
        """Bring the schema to the newest revision (idempotent)."""
        if self._at_head():
            return
        from alembic import command  # slow to import: only when there is work to do
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        cfg.attributes["connection"] = None
        try:
            with self.engine.begin() as conn:
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
        except OperationalError as exc:
            raise StoreError(
                f"cannot reach database {self.url.render_as_string(hide_password=True)}: {exc.orig}"
            ) from None

    def _at_head(self) -> bool:
        try:
            with self.engine.connect() as conn:
                stored = conn.execute(text("SELECT version_num FROM alembic_version")).all()
        except SQLAlchemyError:
            return False
        return [row[0] for row in stored] == [HEAD_REVISION]

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session in one transaction: committed on success, rolled back on any error."""
        session = self._sessions()
        try:
            yield session
            session.commit()
        except SQLAlchemyError as exc:
            session.rollback()
            raise _store_error(exc) from None
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        """A connection for reads that need no transaction of their own (a statement or a
        few, no snapshot shared between them): on PostgreSQL in autocommit, so a SELECT is
        one round trip instead of three (BEGIN, SELECT, COMMIT); SQLite's driver begins no
        transaction for a SELECT anyway. Errors as :meth:`session`'s."""
        try:
            with self.engine.connect() as conn:
                if self.backend == "postgresql":
                    conn.execution_options(isolation_level="AUTOCOMMIT")
                yield conn
        except SQLAlchemyError as exc:
            raise _store_error(exc) from None

    def analyze(self, tables: Sequence[str] = ()) -> None:
        """Refresh the planner's statistics after a bulk change such as a first sync: of the
        named tables (those the change wrote), or of every table when none is named.

        On PostgreSQL the VMs' table is also vacuumed, which marks its pages all-visible so
        that counts are answered from the indexes alone. Vacuumed apart and analyzed once:
        VACUUM (ANALYZE) followed by ANALYZE sampled it twice (half the time of this call
        after a 10,000-VM first sync).
        """
        quote = self.engine.dialect.identifier_preparer.quote  # names from code, never input
        analyze = text("ANALYZE " + ", ".join(quote(t) for t in tables))
        if self.backend == "postgresql":
            with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text("VACUUM vms"))
                conn.execute(analyze)
            return
        with self.engine.begin() as conn:  # SQLite's ANALYZE takes one table at a time
            for one in [text(f"ANALYZE {quote(t)}") for t in tables] or [analyze]:
                conn.execute(one)

    def dispose(self) -> None:
        self.engine.dispose()


def _store_error(exc: SQLAlchemyError) -> StoreError:
    return StoreError(f"database error: {exc.__class__.__name__}: {exc}".split("\n")[0])


def _sqlite_pragmas(dbapi_conn: object, _record: object) -> None:
    cur = dbapi_conn.cursor()  # type: ignore[attr-defined]
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()
