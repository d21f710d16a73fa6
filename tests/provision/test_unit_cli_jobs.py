"""A unit's stop, redeploy and teardown from the command line are jobs: the same kind the REST
API submits, listed by 'corral jobs', run by a detached runner process, so killing the command
that asked stops the following and never the operation; '--wait' (the default) follows it to
its end and prints the unit, '--no-wait' prints the job and returns."""

from __future__ import annotations

import getpass
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from corral.config import Settings
from corral.domain.requests import RequestState, Size
from corral.engines.approval import load_rules
from corral.engines.costing import load_cost_model
from corral.inventory.service import Inventory
from corral.services.blueprints import BlueprintService
from corral.services.fleet import live_fleet
from corral.services.quotas import Prices
from corral.services.requests import RequestService, RequestSpec
from corral.services.templates import TemplateService
from tests.provision.conftest import domain_names
from tests.provision.test_request_interfaces import ALICE, _corral, cli  # noqa: F401

LAB = (
    "name: lab\n"
    "tiers:\n"
    "  - {name: db, template: debian-12, memory_mib: 512, order: 1}\n"
    "  - {name: web, template: debian-12, count: 2, memory_mib: 512, order: 2}\n"
)


def _deployed(env: dict[str, str], home: Path, tmp_path: Path) -> int:
    """A unit of alice's, approved and deployed by the command line's administrator."""
    (tmp_path / "lab.yaml").write_text(LAB)
    _corral(env, "blueprint", "add", str(tmp_path / "lab.yaml"))
    inv = Inventory.from_settings(Settings(home, f"sqlite:///{home / 'corral.db'}"))
    try:
        requests = RequestService(
            inv.db,
            load_rules(Path(env["CORRAL_REQUEST_RULES"])),
            Prices.of(load_cost_model()),
            lambda: live_fleet(inv).fleet,
            blueprints=BlueprintService(inv.db, TemplateService(inv.db)).parts,
        )
        spec = RequestSpec("", 1, Size(1, 1, 0), "alice", "red", "ci", "dev", 7, "lab")
        view = requests.create(spec, ALICE, submit=True)
        assert view.state is RequestState.pending, view.reasons
    finally:
        inv.db.dispose()
    made = json.loads(_corral(env, "request", "approve", str(view.id), "-o", "json").stdout)[0]
    assert made["state"] == "provisioned", made
    return view.id


def _jobs(env: dict[str, str]) -> list[dict[str, object]]:
    listed = _corral(env, "jobs", "list", "--kind", "unit.operate", "-o", "json").stdout
    return list(json.loads(listed))


def _job(env: dict[str, str], job_id: str) -> dict[str, object]:
    return dict(json.loads(_corral(env, "jobs", "show", job_id, "-o", "json").stdout))


def _until_finished(env: dict[str, str], job_id: str) -> dict[str, object]:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        job = _job(env, job_id)
        if job["state"] in ("succeeded", "failed", "cancelled"):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not finish: {job}")


def test_unit_operations_from_the_command_line_are_jobs_followed_to_their_end(
    cli: tuple[dict[str, str], Path, Path],  # noqa: F811
    tmp_path: Path,
) -> None:
    env, home, node = cli
    rid = _deployed(env, home, tmp_path)
    stopped = _corral(env, "blueprint", "stop", str(rid), "-o", "json")
    assert json.loads(stopped.stdout)[0]["state"] == "stopped"
    [job] = _jobs(env)
    assert job["state"] == "succeeded" and job["progress"] == 1.0
    assert f"job {job['id']}: succeeded 100%" in stopped.stderr
    shown = _job(env, str(job["id"]))
    assert shown["result"]["state"] == "stopped"  # type: ignore[index]
    assert shown["submitted_by"] == getpass.getuser()  # the command line's administrator

    asked = _corral(env, "blueprint", "redeploy", str(rid), "--no-wait", "-o", "json")
    [queued] = json.loads(asked.stdout)
    assert queued["kind"] == "unit.operate" and queued["state"] == "queued"
    done = _until_finished(env, queued["job"])
    assert done["state"] == "succeeded" and done["result"]["state"] == "running"  # type: ignore[index]
    units = json.loads(_corral(env, "blueprint", "units", "-o", "json").stdout)
    assert [(u["unit"], u["state"], u["op"]) for u in units] == [(rid, "running", "")]

    gone = _corral(env, "blueprint", "teardown", "999", code=3)
    assert "no unit of request 999" in gone.stderr and "Traceback" not in gone.stderr
    assert len(_jobs(env)) == 2  # a unit nobody may see is refused before any job exists
    assert {n for n in domain_names(node) if f"-r{rid}-" in n}


def test_killing_the_command_that_asked_stops_the_following_not_the_teardown(
    cli: tuple[dict[str, str], Path, Path],  # noqa: F811
    tmp_path: Path,
) -> None:
    env, home, node = cli
    rid = _deployed(env, home, tmp_path)
    proc = subprocess.Popen(
        [sys.executable, "-m", "corral", "blueprint", "teardown", str(rid)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while not _jobs(env) and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    [job] = _jobs(env)
    done = _until_finished(env, str(job["id"]))
    assert done["state"] == "succeeded" and done["result"]["state"] == "torn-down"  # type: ignore[index]
    assert not {n for n in domain_names(node) if f"-r{rid}-" in n}
