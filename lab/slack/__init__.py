"""The lab's Slack stand-in: Web API, Socket Mode and a control API to act as people (see README.md)."""

from .driver import SlackDriver, SlackDriverError, WaitTimeout
from .server import SlackStandIn

__all__ = ["SlackDriver", "SlackDriverError", "SlackStandIn", "WaitTimeout"]
