"""Microsoft Graph v1.0 over httpx: the users, managers, roles and tenant facts the services read, and the
two calls that set a credential (resetPassword as the agent, Temporary Access Pass).

Wire facts relied on (graph-and-entra.md): on-prem properties come only with ``$select``; ``$filter`` string
literals are single-quoted and a quote inside is doubled (OData); errors are
``{"error": {"code", "message", "innerError": {"request-id", ...}}}`` with ``request-id`` /
``client-request-id`` headers; ``429`` carries ``Retry-After`` in seconds (fractional allowed);
resetPassword answers ``202`` + an opaque ``Location`` (+ ``Retry-After``), and GET on that Location gives a
longRunningOperation whose ``status`` ends ``succeeded`` or ``failed`` (``statusDetail`` texts are not
documented: they are shown, never parsed).

Every call sends a ``client-request-id`` (the caller's or a new GUID) and every error keeps Graph's
``request-id``, so a user-facing sentence can quote both. A password or pass is sent sealed (its repr hides
it) and is scrubbed from anything Graph answers before that reaches an exception.

The package: :mod:`~bot.clients.graph.interface` (the :class:`Graph` Protocol the services depend on and the values
it returns), :mod:`~bot.clients.graph.wire` (OData literals, path segments, Retry-After, sealed bodies, error
answers as bot.errors) and :mod:`~bot.clients.graph.client` (the :class:`GraphClient`). Import from here.
"""

from bot.clients.graph.client import PASSWORD_METHOD_ID, USER_SELECT, GraphClient
from bot.clients.graph.interface import (
    Graph,
    GraphUser,
    OrgSync,
    ResetAccepted,
    ResetOperation,
    RoleGroups,
    TapMethod,
    TapResult,
    parse_graph_time,
)
from bot.clients.graph.wire import odata_string

__all__ = [
    "PASSWORD_METHOD_ID",
    "USER_SELECT",
    "Graph",
    "GraphClient",
    "GraphUser",
    "OrgSync",
    "ResetAccepted",
    "ResetOperation",
    "RoleGroups",
    "TapMethod",
    "TapResult",
    "odata_string",
    "parse_graph_time",
]
