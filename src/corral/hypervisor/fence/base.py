"""What a fence method is and what it answers.

A fence method acts on one host (its address and credentials are given when it is
made) and answers with a typed outcome. "Already off" counts as fenced: the point
is that the host is proven off, not that this call turned it off.
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar


class FenceResult(enum.StrEnum):
    fenced = "fenced"
    already_off = "already_off"
    failed = "failed"
    timeout = "timeout"

    @property
    def proven_off(self) -> bool:
        return self in (FenceResult.fenced, FenceResult.already_off)


@dataclass(frozen=True)
class FenceOutcome:
    result: FenceResult
    #: One line for the event log (never a secret).
    detail: str = ""


class FenceMethod(ABC):
    name: ClassVar[str]
    description: ClassVar[str]
    #: Parameter name -> one-line description (with its default).
    parameters: ClassVar[dict[str, str]] = {}

    @abstractmethod
    def fence(self) -> FenceOutcome:
        """Power the host off and prove it is off."""
