"""The workflow's rules on plain data: timing, approvals, the reversible paths, bad policy files."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from corral.engines.reclaim import (
    OPEN,
    SOURCES,
    TARGET,
    CaseView,
    Due,
    Policy,
    State,
    Step,
    Waiting,
    check,
    check_approver,
    check_extension,
    load_policy,
    next_step,
    parse_policy,
)
from corral.errors import ConfigError, ConflictError, ForbiddenError

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
POLICY = Policy(notice_days=14, quarantine_days=14, cooling_off_days=30, approvals={"delete": 1})


def _case(state: State, **kw: object) -> CaseView:
    return CaseView(state=state, flagged_at=T0, flagged_by="ops", **kw)  # type: ignore[arg-type]


def test_timetable_of_the_default_path() -> None:
    assert next_step(_case(State.flagged), POLICY, T0) == Due(Step.notify)
    notified = _case(State.notified, notified_at=T0, respond_by=T0 + timedelta(days=14))
    wait = next_step(notified, POLICY, T0 + timedelta(days=13))
    assert isinstance(wait, Waiting) and wait.until == T0 + timedelta(days=14)
    assert next_step(notified, POLICY, T0 + timedelta(days=14)) == Due(Step.quarantine)
    confirmed = _case(State.confirmed, confirmed_at=T0 + timedelta(days=1))
    assert next_step(confirmed, POLICY, T0 + timedelta(days=1)) == Due(Step.quarantine)
    q = _case(State.quarantined, quarantined_at=T0)
    assert isinstance(next_step(q, POLICY, T0 + timedelta(days=13, hours=23)), Waiting)
    assert next_step(q, POLICY, T0 + timedelta(days=14)) == Due(Step.archive)
    a = _case(State.archived, archived_at=T0)
    late = T0 + timedelta(days=31)
    needs = next_step(a, POLICY, late)
    assert isinstance(needs, Waiting) and needs.until is None and "1 more approval" in needs.reason
    approved = _case(State.archived, archived_at=T0, approvals={Step.delete: frozenset({"boss"})})
    assert next_step(approved, POLICY, late) == Due(Step.delete)
    for closed in (State.deleted, State.extended, State.restored, State.cancelled):
        assert next_step(_case(closed), POLICY, late) is None


def test_each_step_only_from_its_states() -> None:
    for step, sources in SOURCES.items():
        for state in State:
            case = _case(
                state,
                notified_at=T0,
                respond_by=T0,
                confirmed_at=T0,
                quarantined_at=T0,
                archived_at=T0,
                approvals={Step.delete: frozenset({"boss"})},
            )
            far = T0 + timedelta(days=400)
            if state in sources:
                check(case, step, far, POLICY)
            else:
                with pytest.raises(ConflictError, match=f"cannot {step}"):
                    check(case, step, far, POLICY)
    assert all(TARGET[s] not in OPEN for s in (Step.extend, Step.restore, Step.cancel))


def test_approvals_four_eyes_and_approvers() -> None:
    case = _case(State.archived, archived_at=T0)
    with pytest.raises(ForbiddenError, match="flagged"):
        check_approver(case, Step.delete, "ops", POLICY)
    check_approver(case, Step.delete, "boss", POLICY)
    strict = Policy(approvals={"delete": 2}, approvers=frozenset({"boss", "cfo"}))
    with pytest.raises(ForbiddenError, match="not one of"):
        check_approver(case, Step.delete, "intern", strict)
    twice = _case(State.archived, archived_at=T0, approvals={Step.delete: frozenset({"boss"})})
    with pytest.raises(ConflictError, match="already approved"):
        check_approver(twice, Step.delete, "boss", strict)
    with pytest.raises(ConflictError, match="no approval"):
        check_approver(case, Step.archive, "boss", POLICY)
    with pytest.raises(ConflictError, match="nothing left"):
        check_approver(_case(State.deleted), Step.delete, "boss", POLICY)


def test_extensions_need_reason_and_bounded_date() -> None:
    today = date(2026, 3, 2)
    check_extension(today + timedelta(days=30), "quarter-end", today, POLICY)
    for until, reason, msg in (
        (today + timedelta(days=30), " ", "reason"),
        (today, "x", "after today"),
        (today + timedelta(days=366), "x", "more than 365"),
    ):
        with pytest.raises(ConflictError, match=msg):
            check_extension(until, reason, today, POLICY)


@given(
    st.lists(
        st.tuples(st.sampled_from(list(Step)), st.integers(0, 40), st.sampled_from(["a", "b"])),
        max_size=30,
    )
)
def test_no_sequence_deletes_after_an_extension(script: list[tuple[Step, int, str]]) -> None:
    """Walk the rules with any sequence of attempts: an extended case never reaches deleted."""
    case = _case(State.flagged)
    now, extended = T0, False
    for step, days, approver in script:
        now += timedelta(days=days)
        if step is Step.delete and approver == "b":
            try:
                check_approver(case, Step.delete, approver, POLICY)
            except (ConflictError, ForbiddenError):
                pass
            else:
                case = _with(case, approvals={Step.delete: frozenset({approver})})
        try:
            check(case, step, now, POLICY)
        except ConflictError:
            continue
        extended = extended or step is Step.extend
        case = _advance(case, step, now)
        assert not (extended and case.state is State.deleted)
        if case.state is State.deleted:
            assert case.archived_at is not None
            assert now - case.archived_at >= timedelta(days=POLICY.cooling_off_days)


def _with(case: CaseView, **kw: object) -> CaseView:
    from dataclasses import replace

    return replace(case, **kw)  # type: ignore[arg-type]


def _advance(case: CaseView, step: Step, now: datetime) -> CaseView:
    stamps: dict[Step, dict[str, object]] = {
        Step.notify: {"notified_at": now, "respond_by": now + timedelta(days=POLICY.notice_days)},
        Step.confirm: {"confirmed_at": now},
        Step.quarantine: {"quarantined_at": now},
        Step.archive: {"archived_at": now},
    }
    return _with(case, state=TARGET[step], **stamps.get(step, {}))


def test_policy_file_defaults_and_errors(tmp_path: Path) -> None:
    assert load_policy(None) == Policy()
    assert load_policy(tmp_path / "missing.yaml", required=False) == Policy()
    with pytest.raises(ConfigError, match="does not exist"):
        load_policy(tmp_path / "missing.yaml")
    good = tmp_path / "good.yaml"
    good.write_text("notice_days: 7\napprovals: {delete: 2, archive: 1}\napprovers: [boss]\n")
    p = load_policy(good)
    assert (p.notice_days, dict(p.approvals), p.approvers) == (
        7,
        {"delete": 2, "archive": 1},
        frozenset({"boss"}),
    )
    bad = tmp_path / "bad.yaml"
    bad.write_text("notice_days: [1\n")
    with pytest.raises(ConfigError, match="not valid YAML at line"):
        load_policy(bad)
    for data, msg in (
        ({"notice_day": 3}, "unknown setting 'notice_day'"),
        ({"notice_days": -1}, "notice_days"),
        ({"quarantine_days": "two"}, "quarantine_days"),
        ({"approvals": {"notify": 1}}, "approvals.notify"),
        ({"approvals": {"delete": True}}, "approvals.delete"),
        ({"approvers": "boss"}, "approvers"),
        ({"four_eyes": "yes"}, "four_eyes"),
        ({"shutdown_grace_s": -5}, "shutdown_grace_s"),
        ([1, 2], "mapping"),
    ):
        with pytest.raises(ConfigError, match=msg):
            parse_policy(data, "p.yaml")
