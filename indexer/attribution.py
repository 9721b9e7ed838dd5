"""Who gets a deposit's credits (DESIGN.md §3). Pure: lookups come in as mappings or callables.

In order: a memo carrying a customer's deposit reference (a per-customer secret code, so it proves
intent), then a linked sender wallet (linked by the billing service after the customer proved
ownership). Otherwise the deposit goes to suspense, priced, with any claims attached. A claim alone
never credits: signatures are public before they finalize, so anyone could claim a stranger's deposit.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable
from typing import Final

MEMO: Final = "memo"
LINKED_WALLET: Final = "linked_wallet"
OPERATOR: Final = "operator"
SUSPENSE: Final = "suspense"


@dataclasses.dataclass(frozen=True, slots=True)
class Attribution:
    customer: str | None  # None: suspense
    method: str  # MEMO, LINKED_WALLET or SUSPENSE
    reference: str | None = None  # the memo reference that matched


def references_in(memos: Iterable[str], pattern: re.Pattern[str]) -> list[str]:
    """Every deposit reference the pattern finds in the memos, in order, without repeats.

    A pattern with a group named `ref` (or else one group) yields that group; otherwise the whole match.
    """
    found: list[str] = []
    for memo in memos:
        for match in pattern.finditer(memo):
            if "ref" in pattern.groupindex:
                reference = match.group("ref")
            elif pattern.groups == 1:
                reference = match.group(1)
            else:
                reference = match.group(0)
            if reference and reference not in found:
                found.append(reference)
    return found


def attribute(
    memos: Iterable[str],
    sender: str | None,
    *,
    pattern: re.Pattern[str],
    customer_for_reference: Callable[[str], str | None],
    customer_for_wallet: Callable[[str], str | None],
) -> Attribution:
    """Memo reference first, then linked sender wallet, else suspense.

    Two different customers' references in one memo prove no single intent: the deposit goes to
    suspense for an operator to decide.
    """
    customers: dict[str, str] = {}  # customer -> the reference that named it
    for reference in references_in(memos, pattern):
        customer = customer_for_reference(reference)
        if customer is not None:
            customers.setdefault(customer, reference)
    if len(customers) == 1:
        [(customer, reference)] = customers.items()
        return Attribution(customer, MEMO, reference)
    if len(customers) > 1:
        return Attribution(None, SUSPENSE)
    if sender is not None:
        customer = customer_for_wallet(sender)
        if customer is not None:
            return Attribution(customer, LINKED_WALLET)
    return Attribution(None, SUSPENSE)
