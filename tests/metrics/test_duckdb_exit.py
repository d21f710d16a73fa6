"""A command that reads the metrics file and exits at once never aborts in DuckDB's C++ code.

The file's idle closer is a daemon thread; one still closing the connection when the
interpreter stopped its daemon threads made the process abort with "terminate called ...".
At exit the main thread now cancels the closers and closes every file itself.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from corral.metrics.model import EntityKind, Sample, SampleBatch
from corral.metrics.store import DuckDBStore, duckdb_file

SCRIPT = """
import sys
from corral.metrics.model import EntityKind, Sample, SampleBatch
from corral.metrics.store import DuckDBStore
store = DuckDBStore(sys.argv[1])
store.write(SampleBatch.from_samples([Sample(EntityKind.vm, "u", "h", "cpu_pct", 60, 1.0)]))
store.raw(EntityKind.vm, "u", "cpu_pct", 0, 120)
print("done")
"""


def _write(store: DuckDBStore) -> None:
    store.write(SampleBatch.from_samples([Sample(EntityKind.vm, "u", "h", "cpu_pct", 60, 1.0)]))


def test_closing_all_at_exit_cancels_the_idle_closer_and_lets_go_of_the_file(
    tmp_path: Path,
) -> None:
    store = DuckDBStore(str(tmp_path / "m.duckdb"))
    _write(store)
    shared = store._file
    assert isinstance(shared, duckdb_file.SharedFile)
    closer = shared._closer
    assert closer is not None and closer.is_alive()  # the file lingers open for a moment
    duckdb_file.close_all()
    closer.join(5)
    assert not closer.is_alive() and shared._closer is None and shared._conn is None
    assert store.raw(EntityKind.vm, "u", "cpu_pct", 0, 120) == [(60, "h", 1.0)]  # reopens


def test_short_commands_that_read_the_file_exit_cleanly(tmp_path: Path) -> None:
    for i in range(12):
        done = subprocess.run(
            [sys.executable, "-c", SCRIPT, str(tmp_path / f"m{i}.duckdb")],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert (done.returncode, done.stdout.strip()) == (0, "done"), done.stderr[-2000:]
        assert "terminate called" not in done.stderr
