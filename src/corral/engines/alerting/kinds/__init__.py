"""The rule kinds, one class per file, registered here by the name the rules file uses."""

from corral.engines.alerting.kinds.anomaly import Anomaly
from corral.engines.alerting.kinds.backup_rpo import BackupRpo
from corral.engines.alerting.kinds.base import Common, Needs, Rule, seconds
from corral.engines.alerting.kinds.baseline_band import BaselineBand
from corral.engines.alerting.kinds.down import Down
from corral.engines.alerting.kinds.ha import HA
from corral.engines.alerting.kinds.licence import Licence
from corral.engines.alerting.kinds.runway import Runway
from corral.engines.alerting.kinds.threshold import Threshold

KINDS: dict[str, type[Rule]] = {
    k.kind: k for k in (Threshold, BaselineBand, Anomaly, Runway, Down, Licence, HA, BackupRpo)
}

__all__ = ["KINDS", "Common", "Needs", "Rule", "seconds"]
