"""Privacy: the DP ledger and accounting (Opacus' accountants, imported lazily)."""

from guardrail.privacy.accounting import (
    Accountant,
    epsilon,
    max_steps_within,
    merge_history,
    noise_for_budget,
    noise_for_epsilon,
)
from guardrail.privacy.ledger import NON_POISSON, POISSON, Ledger, Segment, load_ledger

__all__ = [
    "NON_POISSON",
    "POISSON",
    "Accountant",
    "Ledger",
    "Segment",
    "epsilon",
    "load_ledger",
    "max_steps_within",
    "merge_history",
    "noise_for_budget",
    "noise_for_epsilon",
]
