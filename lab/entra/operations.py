"""resetPassword's long-running operations: notStarted -> running -> succeeded | failed.

An operation never holds the password: the worker gets it as an argument and drops it when done, so
neither ``GET .../operations/{id}`` nor the control API's ``GET /operations`` can ever show one.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

from lab.entra.wire import graph_time, utcnow

Status = Literal["notStarted", "running", "succeeded", "failed"]


@dataclass
class Operation:
    user_id: str
    upn: str
    caller: str  # UPN of the agent whose delegated token asked for the reset
    app_id: str
    synced: bool
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    created: dt.datetime = field(default_factory=utcnow)
    last_action: dt.datetime = field(default_factory=utcnow)
    status: Status = "notStarted"
    status_detail: str | None = None
    #: Waiting (``running``) for the ``hold_operations`` fault to be switched off; shown to the control API only.
    held: bool = False

    def move(self, status: Status, detail: str | None = None) -> None:
        self.status = status
        self.status_detail = detail
        self.last_action = utcnow()

    @property
    def done(self) -> bool:
        return self.status in ("succeeded", "failed")

    def as_graph(self, graph_base: str, method_id: str) -> dict[str, Any]:
        """The longRunningOperation (passwordResetOperation) resource, as GET on the Location returns it."""
        return {
            "@odata.context": f"{graph_base}/$metadata#users('{self.user_id}')/authentication/operations/$entity",
            "@odata.type": "#microsoft.graph.longRunningOperation",
            "id": self.id,
            "createdDateTime": graph_time(self.created),
            "lastActionDateTime": graph_time(self.last_action),
            "resourceLocation": f"{graph_base}/users/{self.user_id}/authentication/methods/{method_id}",
            "status": self.status,
            "statusDetail": self.status_detail,
        }

    def as_control(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "user_id": self.user_id,
            "upn": self.upn,
            "caller": self.caller,
            "app": self.app_id,
            "writeback": self.synced,
            "createdDateTime": graph_time(self.created),
            "lastActionDateTime": graph_time(self.last_action),
            # To the microsecond (Graph's own field has seconds): when the status last moved, for benchmarks that
            #: take the stand-in's own time out of what they measure.
            "last_action_at": self.last_action.isoformat(),
            "status": self.status,
            "statusDetail": self.status_detail,
            "held": self.held,
        }
