"""The lab's Duo Auth API stand-in: pushes to the people fixture's enrolled devices, answered by the control API."""

from lab.duo.server import DuoStandIn

__all__ = ["DuoStandIn"]
