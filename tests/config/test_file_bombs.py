"""Resource bombs in the files Corral reads: a clear one-line error, in bounded memory.

Each bomb goes to the real CLI in a child process that reports its own peak RSS
(``resource.getrusage``) and runs under an address-space limit, so a regression fails on the
message or the memory instead of taking the machine down. Memory is asserted, never time.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from corral.safeload import EXCERPT, MAX_BYTES, MAX_DEPTH, parse_json, parse_yaml

PEAK_RSS_LIMIT_MIB = 400  # a CLI command reading a small file needs ~60 MiB
ADDRESS_SPACE_LIMIT = 4 * 1024**3  # the old code grew to 2.29 GB on the 492-byte bomb

_RUNNER = textwrap.dedent(
    """
    import json, resource, sys
    resource.setrlimit(resource.RLIMIT_AS, ({limit}, {limit}))
    report, sys.argv = sys.argv[1], ["corral", *sys.argv[2:]]
    code = 0
    try:
        from corral.cli.main import run
        run()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException as exc:
        code = -1
        print(type(exc).__name__, file=sys.stderr)
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss across exec, so a child of a big pytest
    # process would report its parent's peak
    with open("/proc/self/status") as status:
        rss_kib = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    with open(report, "w") as fh:
        json.dump({{"code": code, "rss_mib": rss_kib / 1024}}, fh)
    """
).format(limit=ADDRESS_SPACE_LIMIT)


def billion_laughs() -> str:
    """Nine levels of nine aliases each: 9**9 strings once expanded, under 500 bytes."""
    lines = ["a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    names = "abcdefghi"
    for prev, name in itertools.pairwise(names):
        lines.append(f"{name}: &{name} [{', '.join(['*' + prev] * 9)}]")
    lines.append("currency: *i")
    return "\n".join(lines) + "\n"


BOMBS = {
    "laughs.yaml": billion_laughs(),
    "deep.yaml": "[" * 50_000 + "]" * 50_000,
    "deep-map.yaml": "".join(f"{' ' * i}k:\n" for i in range(2_000)),
    "deep.json": "[" * 50_000 + "]" * 50_000,
    "selfref.yaml": "currency: &a [1, *a]\n",
}
HUGE = "huge.yaml"  # a sparse file beyond MAX_BYTES: its size alone refuses it


def _bomb(folder: Path, name: str) -> Path:
    path = folder / name
    if name == HUGE:
        with path.open("wb") as fh:
            fh.truncate(MAX_BYTES + 1)
    else:
        path.write_text(BOMBS[name], encoding="utf-8")
    return path


def _commands(path: Path, inventory: Path) -> dict[str, tuple[list[str], dict[str, str]]]:
    """Every kind of file Corral reads, each given the bomb."""
    return {
        "cost model": (["cost", "vm", "-i", str(inventory), "--cost-model", str(path)], {}),
        "inventory file": (["cost", "vm", "-i", str(path)], {}),
        "fleet file": (["plan", "place", "--fleet-file", str(path), "--new", "x:1:1024"], {}),
        "reclaim policy file": (["reclaim", "policy"], {"CORRAL_RECLAIM_POLICY": str(path)}),
    }


READERS = ("cost model", "inventory file", "fleet file", "reclaim policy file")


def _run(home: Path, args: list[str], extra: dict[str, str], report: Path) -> tuple[dict, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CORRAL_")}
    env.update({"CORRAL_HOME": str(home), **extra})
    proc = subprocess.run(
        [sys.executable, "-c", _RUNNER, str(report), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    return json.loads(report.read_text()), proc.stderr


#: The billion laughs against every reader; each other bomb against one of them.
CASES = [
    *(("laughs.yaml", what) for what in READERS),
    ("deep.yaml", "fleet file"),
    ("deep-map.yaml", "reclaim policy file"),
    ("deep.json", "inventory file"),
    ("selfref.yaml", "cost model"),
    (HUGE, "cost model"),
    (HUGE, "fleet file"),
]


@pytest.mark.parametrize(("bomb", "what"), CASES)
def test_file_readers_refuse_the_bomb_clearly_in_bounded_memory(
    tmp_path: Path, bomb: str, what: str
) -> None:
    path = _bomb(tmp_path, bomb)
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text("vms: []\n", encoding="utf-8")
    args, extra = _commands(path, inventory)[what]
    result, stderr = _run(tmp_path / "home", args, extra, tmp_path / "report.json")
    # the old-format inventory beside the bomb earns a deprecation line; the error is one line
    lines = [x for x in stderr.strip().splitlines() if not x.startswith("warning:")]
    assert result["code"] == 2 and len(lines) == 1, (result, stderr[:2000])
    # cost commands read inventory files through the one fleet-file reader
    reader = "fleet file" if what == "inventory file" else what
    assert lines[0].startswith(f"error: {reader} {path}"), lines[0][:500]
    assert len(lines[0]) < 300, lines[0][:500]
    assert result["rss_mib"] < PEAK_RSS_LIMIT_MIB, result


def test_node_file_xml_is_bounded_too(tmp_path: Path) -> None:
    """Node files are XML read by lxml with huge_tree off and no DTD: depth stops at 256."""
    home = tmp_path / "home"
    home.mkdir()
    deep = home / "deep.xml"
    deep.write_text("<node>" + "<a>" * 50_000 + "</a>" * 50_000 + "</node>", encoding="utf-8")
    laughs = home / "laughs.xml"
    laughs.write_text(
        '<!DOCTYPE node [<!ENTITY a "lol"><!ENTITY b "&a;&a;&a;&a;&a;">]><node>&b;</node>',
        encoding="utf-8",
    )
    # readers of the host list learn only that the file could not be loaded (issue 9 item 1)
    for path, expected in ((deep, "could not be loaded"), (laughs, "could not be loaded")):
        report = home / "report.json"
        added, stderr = _run(home, ["hosts", "add", path.stem, f"test://{path}"], {}, report)
        if added["code"] == 0:  # accepted as a URI: the sync reads the file and says why not
            synced, _ = _run(home, ["sync"], {}, report)
            assert synced["rss_mib"] < PEAK_RSS_LIMIT_MIB
            _run(home, ["hosts", "list", "-o", "json"], {}, report)
            stderr = _host_error(home, path.stem)
        assert expected in stderr and len(stderr) < 300, stderr[:500]
        assert added["rss_mib"] < PEAK_RSS_LIMIT_MIB


def _host_error(home: Path, name: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "corral", "hosts", "list", "-o", "json"],
        env={**os.environ, "CORRAL_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    return str(next(h for h in json.loads(proc.stdout) if h["name"] == name)["last_error"])


def test_errors_quote_a_short_excerpt() -> None:
    from corral.errors import ConfigError

    long_value = "x" * 10_000
    with pytest.raises(ConfigError) as caught:
        parse_yaml("a: [" + long_value, "cost model f.yaml", ConfigError)
    assert len(caught.value.message) < 200 and long_value not in caught.value.message
    from corral.engines.costing import parse_cost_model

    with pytest.raises(ConfigError) as invalid:
        parse_cost_model(f"currency: [{', '.join([long_value] * 50)}]\n", "cost model f.yaml")
    assert len(invalid.value.message) < 80 + EXCERPT * 2


def test_honest_documents_within_the_bounds_load() -> None:
    nested = "[" * MAX_DEPTH + "]" * MAX_DEPTH
    assert parse_json(nested, "f.json") == parse_yaml(nested, "f.yaml")
    shared = "base: &b {cpu: 2, mem: 4096}\nvms: [*b, *b, *b]\n"
    assert parse_yaml(shared, "f.yaml")["vms"] == [{"cpu": 2, "mem": 4096}] * 3
    assert parse_json('{"a": "[[[[["}', "f.json") == {"a": "[[[[["}
