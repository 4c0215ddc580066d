"""The product's services: requests and approvals, resets, follow-ups, health, links, the outbox, the doctor.

Each gathers facts from the clients and the store, asks the pure rules in ``bot.domain`` what they mean, acts, and
renders with ``bot.messages``. Modules here never import ``slack_*``, ``ldap3`` or ``msal`` (they talk to the outside
world through the Protocols in ``bot.clients``); the import contracts in pyproject.toml hold this.
"""
