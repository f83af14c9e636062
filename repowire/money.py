"""Money as people read it, in the listings, budgets and reports."""

from __future__ import annotations

__all__ = ["format_money"]


def format_money(amount: float) -> str:
    """$1.25, $0.0042: cents above a dollar, four places below it."""
    return f"${amount:,.2f}" if amount >= 1 or amount == 0 else f"${amount:.4f}"
