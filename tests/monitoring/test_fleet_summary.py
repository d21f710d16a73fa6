"""The fleet summary engine: diagnoses in, sentences out. Properties over random fleets (every VM
with a finding is in exactly one group, the counts add up, a group is one host and one cause,
groups are ranked by impact) and the worded examples a person reads."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from corral.engines.diagnosis import Cause, Diagnosis, Finding, summarize
from corral.engines.diagnosis.fleet import reword

AT = 1_700_000_000.0
T1405 = AT - AT % 86400 + 14 * 3600 + 5 * 60  # 14:05 UTC that day


def slowed(
    vm: str, host: str, since: float, culprits: tuple[str, ...], sev: float = 2.0
) -> Diagnosis:
    f = Finding(Cause.host_cpu_contention, "wait + steal", sev, since, culprits)
    return Diagnosis(vm, host, AT, 3600.0, (f,))


def fine(vm: str, host: str) -> Diagnosis:
    return Diagnosis(vm, host, AT, 3600.0, ())


def test_seven_vms_slowed_by_two_batch_vms_are_one_sentence() -> None:
    victims = [slowed(f"v{i}", "kvm-03", T1405 + 60 * i, ("etl-1", "etl-2")) for i in range(7)]
    others = [fine(f"ok{i}", "kvm-03") for i in range(5)] + [fine("etl-1", "kvm-03")]
    got = summarize(
        [*victims, *others],
        units={"etl-1": "batch-etl", "etl-2": "batch-etl"},
    )
    assert got.diagnosed == 13 and got.healthy == 6 and len(got.groups) == 1
    group = got.groups[0]
    assert group.culprits == ("etl-1", "etl-2")
    assert group.sentence.startswith("7 VMs on kvm-03 slowed by host CPU contention since ")
    assert "14:05 UTC; cause: the 2 VMs of batch-etl" in group.sentence


def test_culprits_without_one_unit_are_named_and_a_lone_vm_by_name() -> None:
    got = summarize(
        [slowed("u1", "kvm-01", T1405, ("n1", "n2"))],
        names={"u1": "web-1", "n1": "db-1", "n2": "db-2"},
    )
    assert got.groups[0].sentence.startswith("web-1 on kvm-01 slowed by host CPU contention")
    assert got.groups[0].sentence.endswith("cause: db-1, db-2")


def test_onsets_hours_apart_are_two_incidents_and_a_rare_culprit_is_not_named() -> None:
    early = [slowed(f"a{i}", "kvm-02", T1405 - 6 * 3600, ("x",)) for i in range(3)]
    late = [slowed(f"b{i}", "kvm-02", T1405, ("y",)) for i in range(3)]
    late.append(slowed("b9", "kvm-02", T1405, ("y", "odd")))
    got = summarize([*early, *late])
    assert [len(g.vms) for g in got.groups] == [4, 3]  # more impact first
    assert got.groups[0].culprits == ("y",)  # "odd" named by 1 of 4: below the quorum


def test_own_demand_names_no_culprit() -> None:
    f = Finding(Cause.own_demand, "busy", 1.2, T1405, ("v1",))
    got = summarize([Diagnosis("v1", "kvm-04", AT, 3600.0, (f,))])
    assert got.groups[0].culprits == ()
    assert got.groups[0].sentence.startswith("v1 on kvm-04 at its own CPU limit since")


causes = st.sampled_from(list(Cause))
diagnoses = st.lists(
    st.tuples(
        st.sampled_from(["h1", "h2", "h3"]),
        st.one_of(st.none(), st.tuples(causes, st.floats(1.0, 9.0), st.integers(0, 20))),
        st.lists(st.sampled_from(["c1", "c2", "c3"]), max_size=3),
    ),
    max_size=60,
)


@settings(max_examples=200, deadline=None)
@given(diagnoses)
def test_every_vm_with_a_finding_is_in_exactly_one_group(rows: list) -> None:  # type: ignore[type-arg]
    ds = []
    for i, (host, found, culprits) in enumerate(rows):
        if found is None:
            ds.append(fine(f"vm{i}", host))
            continue
        cause, sev, minutes = found
        since = None if minutes == 0 else T1405 + minutes * 600
        ds.append(
            Diagnosis(
                f"vm{i}", host, AT, 3600.0, (Finding(cause, "", sev, since, tuple(culprits)),)
            )
        )
    got = summarize(ds)
    grouped = [vm for g in got.groups for vm in g.vms]
    sick = {d.vm for d in ds if d.findings}
    assert sorted(grouped) == sorted(sick)  # each once, none missing
    assert got.diagnosed == len(ds) and got.healthy + got.affected == len(ds)
    by_vm = {d.vm: d for d in ds}
    for g in got.groups:
        assert {by_vm[v].host for v in g.vms} == {g.host}
        assert {by_vm[v].findings[0].cause for v in g.vms} == {g.cause}
        assert g.sentence.count(g.host) == 1 and set(g.culprits).isdisjoint({""})
    impacts = [g.impact for g in got.groups]
    assert impacts == sorted(impacts, reverse=True)


def test_reword_names_the_vms_learnt_after_the_summary() -> None:
    got = summarize(
        [slowed("u1", "kvm-01", T1405, ("n1",)), slowed("u2", "kvm-01", T1405, ("n1",))]
    )
    assert got.groups[0].sentence.endswith("cause: n1 (u1, u2)")
    named = reword(got, {"u1": "web-1", "u2": "web-2", "n1": "etl-1"}, {"n1": "batch-etl"})
    assert named.groups[0].sentence.endswith("cause: the VM of batch-etl (web-1, web-2)")
    assert named.groups[0].vms == got.groups[0].vms and named.healthy == got.healthy
