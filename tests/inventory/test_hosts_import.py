"""``corral hosts import`` and ``POST /api/v1/host-imports``: many hosts at once, all or none.

Issue 16 item 3: hosts were added one command at a time (1.15 s each at 200 hosts). A file of
hosts is checked whole (names, the URI allow-list, repeats, hosts already registered) and then
registered in one transaction, without opening any host; the first sync reads them all.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from corral.api.app import create_app
from corral.errors import ValidationError
from corral.inventory.hosts_file import HostEntry, read_hosts_file
from corral.inventory.service import Inventory
from corral.security.token_store import TokenStore
from tests.inventory.test_cli import run

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from fleetgen import write_fleet


def _csv(path: Path, rows: list[tuple[str, str]]) -> Path:
    path.write_text("name,uri\n" + "".join(f"{n},{u}\n" for n, u in rows), encoding="utf-8")
    return path


def test_a_csv_of_hosts_is_registered_and_the_first_sync_reads_them(
    inventory: Inventory, tmp_path: Path
) -> None:
    fleet = write_fleet(tmp_path / "fleet", 6, 4, seed=3)
    entries = read_hosts_file(
        _csv(tmp_path / "hosts.csv", [(p.stem, f"test://{p}") for p in fleet])
    )
    done = inventory.import_hosts(entries)
    assert done.added == tuple(p.stem for p in fleet) and done.skipped == ()
    assert {h.status for h in inventory.list_hosts()} == {"never-synced"}
    report = inventory.sync()
    assert report.count_of("created") == 24
    assert {h.status for h in report.hosts} == {"ok"}


def test_one_bad_entry_keeps_the_whole_file_out_and_every_problem_is_named(
    inventory: Inventory, tmp_path: Path
) -> None:
    fleet = write_fleet(tmp_path / "fleet", 2, 1, seed=4)
    inventory.add_host("taken", f"test://{fleet[1]}")
    rows = [
        ("good", f"test://{fleet[0]}"),
        ("evil", "qemu+ext:///system?command=/bin/touch"),  # runs a program: refused
        ("good", f"test://{fleet[0]}"),  # the same name twice
        ("again", f"test://{fleet[1]}"),  # the URI of a registered host
        ("bad name!", f"test://{fleet[0]}"),
    ]
    with pytest.raises(ValidationError) as err:
        inventory.import_hosts(read_hosts_file(_csv(tmp_path / "hosts.csv", rows)))
    text = err.value.message
    assert text.startswith("4 of 5 hosts cannot be imported, so none was")
    for line in ("entry 3 (evil)", "entry 4: the name 'good'", "entry 5 (again)", "entry 6"):
        assert line in text
    assert [h.name for h in inventory.list_hosts()] == ["taken"]


def test_skip_existing_leaves_registered_hosts_alone(inventory: Inventory, tmp_path: Path) -> None:
    fleet = write_fleet(tmp_path / "fleet", 3, 1, seed=5)
    inventory.add_host(fleet[0].stem, f"test://{fleet[0]}")
    entries = [HostEntry(p.stem, f"test://{p}", None, i + 2) for i, p in enumerate(fleet)]
    done = inventory.import_hosts(entries, skip_existing=True)
    assert done.added == (fleet[1].stem, fleet[2].stem) and done.skipped == (fleet[0].stem,)
    assert inventory.import_hosts(entries, skip_existing=True).added == ()


@pytest.mark.parametrize(
    ("content", "suffix", "says"),
    [
        (
            "host,uri\na,test:///default\n",
            ".csv",
            "needs a header row with the columns name and uri",
        ),
        ("name,uri,password\na,test:///default,x\n", ".csv", "passwords are never read"),
        ("name,uri\na,test:///default,extra\n", ".csv", "more values than the header"),
        ('{"name": "a"}', ".json", "must hold a list"),
        ('[{"name": "a"}]', ".json", "uri is missing or empty"),
        ("- name: a\n  uri: [1, 2]\n", ".yaml", "uri is missing or empty"),
        ("[{", ".json", "is not valid JSON"),
    ],
)
def test_malformed_files_get_one_clear_error(
    tmp_path: Path, content: str, suffix: str, says: str
) -> None:
    path = tmp_path / f"hosts{suffix}"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ValidationError, match=says):
        read_hosts_file(path)


def test_cli_imports_and_exits_2_on_a_bad_file(tmp_path: Path) -> None:
    home = tmp_path / "home"
    fleet = write_fleet(tmp_path / "fleet", 3, 2, seed=6)
    hosts = _csv(tmp_path / "hosts.csv", [(p.stem, f"test://{p}") for p in fleet])
    out = json.loads(run(home, "hosts", "import", str(hosts), "-o", "json").stdout)
    assert out == {"added": 3, "skipped": []}
    again = run(home, "hosts", "import", str(hosts), ok=False)
    assert again.returncode == 2 and "already registered" in again.stderr
    assert "Traceback" not in again.stderr
    assert json.loads(
        run(home, "hosts", "import", str(hosts), "--skip-existing", "-o", "json").stdout
    )["skipped"] == [p.stem for p in fleet]
    synced = json.loads(run(home, "sync", "-o", "json").stdout)
    assert synced["events"]["created"] == 6


def test_rest_import_needs_a_token_and_is_all_or_none(inventory: Inventory, tmp_path: Path) -> None:
    fleet = write_fleet(tmp_path / "fleet", 2, 1, seed=8)
    token = TokenStore(inventory.db).create("tests")
    client = TestClient(create_app(inventory))
    body = {"hosts": [{"name": p.stem, "uri": f"test://{p}"} for p in fleet]}
    assert client.post("/api/v1/host-imports", json=body).status_code == 401
    auth = {"Authorization": f"Bearer {token}"}
    bad = {"hosts": [*body["hosts"], {"name": "x", "uri": "qemu+ssh://h/system?command=sh"}]}
    refused = client.post("/api/v1/host-imports", json=bad, headers=auth)
    assert refused.status_code in (400, 422)
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert inventory.list_hosts() == []
    done = client.post("/api/v1/host-imports", json=body, headers=auth)
    assert done.status_code == 201 and done.json() == {"added": 2, "skipped": []}
    assert sorted(h.name for h in inventory.list_hosts()) == sorted(p.stem for p in fleet)
