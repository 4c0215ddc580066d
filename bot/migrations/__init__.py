"""Alembic's environment for resetbot's schema (``env.py``) and its revisions (``versions/``).

Run through ``bot.schema`` (``resetbot migrate``, or ``resetbot run`` on start), never the alembic command: the
configuration is made in code and the connection handed in. Developers write a new revision with
``python -m bot.migrations "what changed"`` (see the README, *Database and migrations*).
"""
