"""Every reclamation step, one class each, registered here by the step it takes."""

from __future__ import annotations

from collections.abc import Mapping

from corral.engines.reclaim import Step
from corral.reclaim.steps.archive import Archive
from corral.reclaim.steps.base import StepAction
from corral.reclaim.steps.cancel import Cancel
from corral.reclaim.steps.confirm import Confirm
from corral.reclaim.steps.delete import Delete
from corral.reclaim.steps.extend import Extend
from corral.reclaim.steps.notify import Notify
from corral.reclaim.steps.quarantine import Quarantine
from corral.reclaim.steps.restore import Restore

STEPS: Mapping[Step, StepAction] = {
    action.step: action
    for action in (
        Notify(),
        Quarantine(),
        Archive(),
        Delete(),
        Restore(),
        Extend(),
        Confirm(),
        Cancel(),
    )
}

#: The steps whose actions change the VM on its host (power, snapshots, tags, deletion).
HYPERVISOR_STEPS = (Step.quarantine, Step.archive, Step.delete, Step.restore, Step.extend)

__all__ = ["HYPERVISOR_STEPS", "STEPS", "StepAction"]
