"""Money safety: spend caps and budgets, the session ledger, charge confirmation, meter prices."""
