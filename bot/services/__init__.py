"""The product's rules: requests and approvals, resets, follow-ups, health.

Modules here are plain Python and never import ``slack_*``. Keep this package ``__init__`` free of imports:
``bot.store`` imports the pure leaf modules ``bot.services.lifecycle`` and ``bot.services.audit`` (so there is one
definition of the state table and of the audit hash), and an import here would turn that into a cycle.
"""
