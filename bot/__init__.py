"""resetbot: password resets for hybrid Entra ID / Active Directory shops, approved and verified in Slack."""

__version__ = "0.1.0"
