"""The lab's Entra ID + Microsoft Graph stand-in, whose password writeback writes into the lab AD."""

from lab.entra.server import EntraStandIn

__all__ = ["EntraStandIn"]
