"""Ready-made bank designs unlike the default bank, for measuring quality on other banks.

Each entry of `SCENARIOS` is a `BankDesign` for `finintel.synthetic.generate_bank`: its own
personas and shares, its own planted typologies (at 1-3% of customers), its own default
mechanism and its own set of optional columns.

- `high_street`: salaried card users, a cash-and-branch group, retirees, homeowners and
  students; defaults driven mostly by debt; every optional column.
- `digital_gig`: gig workers, digital professionals, students, business owners and affluent
  travellers; defaults driven mostly by low balances and spending beyond income; no
  `balance_after`, no `credit_score`.
- `regional_business`: salaried card users, a cash-and-branch group, business owners,
  affluent travellers and retirees; defaults driven mostly by use of the credit limit and
  missed loan payments; no `category`.

Example:
    >>> import tempfile
    >>> from pathlib import Path
    >>> from finintel.synthetic import generate_bank
    >>> design = SCENARIOS["digital_gig"]
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     bank = generate_bank(Path(tmp), 300, seed=5, design=design)
    ...     bank.n_customers
    300
"""

from __future__ import annotations

from dataclasses import replace

from finintel.synthetic import BankDesign, DefaultMechanism, Persona

__all__ = ["PERSONA_LIBRARY", "SCENARIOS"]

# Category weights follow SPENDING_CATEGORIES: groceries, dining, travel, utilities, rent,
# entertainment, cash, transfer, health, shopping. Channel multipliers follow CHANNELS:
# card, online, atm, branch, transfer.

_SALARIED_CARD = Persona(
    "salaried_card",
    share=0.30,
    age=(42, 11, 21, 67),
    income=(40_000, 0.35),
    tenure=(1, 20),
    activity=1.2,
    min_free=3,
    salaried=True,
    credit_share=0.05,
    spend_ratio=0.92,
    credit_income=0.0,
    balance_months=1.8,
    loan_prob=0.22,
    credit_limit=0.12,
    night=1.0,
    categories=(30, 10, 4, 13, 10, 6, 5, 6, 6, 10),
    channel_bias=(1.4, 1.1, 0.7, 0.5, 1.0),
)
# Same people as salaried_card by income, age and activity; they differ in how they pay.
_CASH_AND_BRANCH = Persona(
    "cash_and_branch",
    share=0.15,
    age=(46, 13, 20, 82),
    income=(34_000, 0.35),
    tenure=(2, 25),
    activity=1.1,
    min_free=3,
    salaried=True,
    credit_share=0.08,
    spend_ratio=0.95,
    credit_income=0.0,
    balance_months=1.2,
    loan_prob=0.15,
    credit_limit=0.06,
    night=0.8,
    categories=(18, 4, 2, 12, 10, 2, 40, 6, 3, 3),
    channel_bias=(0.45, 0.25, 3.0, 3.5, 0.8),
)
_RETIREE = Persona(
    "retiree",
    share=0.20,
    age=(74, 7, 63, 95),
    income=(25_000, 0.35),
    tenure=(10, 45),
    activity=0.55,
    min_free=3,
    salaried=True,  # a monthly pension
    credit_share=0.04,
    spend_ratio=0.85,
    credit_income=0.0,
    balance_months=6.0,
    loan_prob=0.03,
    credit_limit=0.05,
    night=0.4,
    categories=(34, 8, 5, 16, 4, 3, 12, 4, 10, 4),
    channel_bias=(1.0, 0.35, 1.2, 2.8, 1.0),
)
_HOMEOWNER = Persona(
    "homeowner",
    share=0.20,
    age=(41, 8, 26, 66),
    income=(58_000, 0.35),
    tenure=(3, 20),
    activity=1.3,
    min_free=3,
    salaried=True,
    credit_share=0.04,
    spend_ratio=0.95,
    credit_income=0.0,
    balance_months=0.9,
    loan_prob=1.0,
    credit_limit=0.12,
    night=1.0,
    categories=(30, 9, 4, 16, 2, 8, 4, 6, 6, 12),
    channel_bias=(1.1, 1.2, 0.7, 0.6, 1.2),
    overdrawn=0.3,
    loan_size=1.3,
    loan_heavy=True,
)
_STUDENT = Persona(
    "student",
    share=0.15,
    age=(21, 2, 18, 28),
    income=(11_000, 0.4),
    tenure=(0, 4),
    activity=2.5,
    min_free=8,
    salaried=False,
    credit_share=0.25,
    spend_ratio=0.97,
    credit_income=1.0,
    balance_months=0.8,
    loan_prob=0.06,
    credit_limit=0.08,
    night=2.2,
    categories=(22, 20, 4, 2, 12, 18, 4, 6, 2, 10),
    channel_bias=(1.1, 2.0, 0.8, 0.1, 0.7),
    late_hours=True,
)
_GIG_WORKER = Persona(
    "gig_worker",
    share=0.30,
    age=(32, 8, 19, 62),
    income=(26_000, 0.45),
    tenure=(0.5, 8),
    activity=3.5,
    min_free=10,
    salaried=False,  # paid per job, at irregular times and amounts
    credit_share=0.4,
    spend_ratio=0.97,
    credit_income=0.95,
    balance_months=0.7,
    loan_prob=0.15,
    credit_limit=0.08,
    night=1.6,
    categories=(26, 16, 3, 8, 14, 8, 6, 8, 3, 8),
    channel_bias=(1.2, 1.6, 1.0, 0.2, 1.0),
    late_hours=True,
)
_DIGITAL_PROFESSIONAL = Persona(
    "digital_professional",
    share=0.25,
    age=(33, 6, 22, 56),
    income=(62_000, 0.35),
    tenure=(0.5, 10),
    activity=3.0,
    min_free=8,
    salaried=True,
    credit_share=0.05,
    spend_ratio=0.93,
    credit_income=0.0,
    balance_months=2.0,
    loan_prob=0.15,
    credit_limit=0.2,
    night=1.3,
    categories=(22, 18, 7, 5, 8, 12, 2, 6, 4, 16),
    channel_bias=(1.4, 2.0, 0.3, 0.1, 0.6),
)
_BUSINESS_OWNER = Persona(
    "business_owner",
    share=0.15,
    age=(47, 10, 24, 76),
    income=(55_000, 0.55),
    tenure=(2, 25),
    activity=2.5,
    min_free=8,
    salaried=False,  # takings and supplier payments run through the account
    credit_share=0.45,
    spend_ratio=0.98,
    credit_income=3.0,
    balance_months=3.0,
    loan_prob=0.35,
    credit_limit=0.25,
    night=1.1,
    categories=(12, 10, 5, 10, 8, 3, 8, 30, 4, 10),
    channel_bias=(0.8, 1.5, 0.6, 1.5, 2.0),
    loan_size=0.5,
)
_AFFLUENT_TRAVELLER = Persona(
    "affluent_traveller",
    share=0.12,
    age=(49, 10, 28, 82),
    income=(130_000, 0.4),
    tenure=(3, 25),
    activity=2.0,
    min_free=6,
    salaried=True,
    credit_share=0.06,
    spend_ratio=0.85,
    credit_income=0.0,
    balance_months=8.0,
    loan_prob=0.1,
    credit_limit=0.3,
    night=1.2,
    categories=(12, 22, 28, 6, 2, 10, 2, 6, 4, 8),
    channel_bias=(1.4, 1.6, 0.4, 0.3, 0.8),
    capital_bias=2.0,
)

PERSONA_LIBRARY: dict[str, Persona] = {
    p.name: p
    for p in (
        _SALARIED_CARD,
        _CASH_AND_BRANCH,
        _RETIREE,
        _HOMEOWNER,
        _STUDENT,
        _GIG_WORKER,
        _DIGITAL_PROFESSIONAL,
        _BUSINESS_OWNER,
        _AFFLUENT_TRAVELLER,
    )
}


def _mix(**shares: float) -> tuple[Persona, ...]:
    """Personas from the library with the given shares."""
    return tuple(replace(PERSONA_LIBRARY[name], share=share) for name, share in shares.items())


HIGH_STREET = BankDesign(
    name="high_street",
    description=(
        "A traditional high-street bank: salaried card users, a cash-and-branch group (15%)"
        " much like them but paying at ATMs and branches, retirees on pensions, mortgaged"
        " homeowners and students. Defaults are driven mostly by debt. ATM withdrawals come"
        " in whole notes. Plants pass-through, structuring, dormant-then-active, card testing"
        " and round amounts at 1.5% of customers. Every optional column is written."
    ),
    personas=_mix(
        salaried_card=0.32, cash_and_branch=0.15, retiree=0.20, homeowner=0.18, student=0.15
    ),
    anomaly_rate=0.015,
    anomalies=(
        ("pass_through", 1.0),
        ("structuring", 1.0),
        ("dormant_then_active", 1.0),
        ("card_testing", 1.0),
        ("round_amounts", 1.0),
    ),
    default=DefaultMechanism(
        intercept=-3.4,
        debt_to_income=1.1,
        overdraft=0.3,
        spending=0.3,
        low_balance=-0.03,
        log_income=-0.3,
        hidden_stress=0.3,
        noise=0.8,
    ),
    cash_in_notes=True,
    micro_payments=0.04,
)

DIGITAL_GIG = BankDesign(
    name="digital_gig",
    description=(
        "A digital-only bank: gig workers paid per job with no salary, digital professionals,"
        " students, sole traders moving large sums in and out, and affluent travellers."
        " Defaults are driven mostly by negative or low balances and spending beyond income."
        " Plants velocity, card testing, pass-through and large-spend months at 2% of"
        " customers. No balance_after on transactions and no credit_score on customers."
    ),
    personas=_mix(
        gig_worker=0.30,
        digital_professional=0.28,
        student=0.20,
        business_owner=0.10,
        affluent_traveller=0.12,
    ),
    anomaly_rate=0.02,
    anomalies=(
        ("velocity", 1.0),
        ("card_testing", 1.0),
        ("pass_through", 1.0),
        ("large_spend_month", 1.0),
    ),
    default=DefaultMechanism(
        intercept=-3.2,
        debt_to_income=0.1,
        overdraft=2.2,
        spending=0.2,
        net_outflow=2.5,
        low_balance=-0.35,
        log_income=-0.3,
        hidden_stress=0.3,
        noise=0.8,
    ),
    cash_in_notes=True,
    micro_payments=0.04,
    customer_columns=(
        "gender",
        "region",
        "account_balance",
        "credit_limit",
        "loan_balance",
        "employment_years",
        "customer_since",
    ),
    transaction_columns=("channel", "category"),
)

REGIONAL_BUSINESS = BankDesign(
    name="regional_business",
    description=(
        "A regional bank with business and private clients: salaried card users, a"
        " cash-and-branch group (15%), business owners whose takings and supplier payments run"
        " through the account, affluent travellers and retirees. Loan holders sometimes miss"
        " payments; defaults are driven mostly by use of the credit limit and arrears."
        " Plants structuring under a 15,000 threshold, large-spend months, velocity,"
        " dormant-then-active and round amounts at 2.5% of customers. No category column."
    ),
    personas=_mix(
        salaried_card=0.35,
        cash_and_branch=0.15,
        business_owner=0.18,
        affluent_traveller=0.14,
        retiree=0.18,
    ),
    anomaly_rate=0.025,
    anomalies=(
        ("structuring", 1.0),
        ("large_spend_month", 1.0),
        ("velocity", 1.0),
        ("dormant_then_active", 1.0),
        ("round_amounts", 1.0),
    ),
    default=DefaultMechanism(
        intercept=-3.6,
        debt_to_income=0.1,
        overdraft=0.3,
        spending=0.2,
        low_balance=-0.05,
        log_income=-0.3,
        utilisation=1.4,
        arrears=0.6,
        hidden_stress=0.3,
        noise=0.8,
    ),
    missed_payments=0.04,
    reporting_threshold=15_000.0,
    cash_in_notes=True,
    micro_payments=0.04,
    transaction_columns=("channel", "balance_after"),
)

SCENARIOS: dict[str, BankDesign] = {
    d.name: d for d in (HIGH_STREET, DIGITAL_GIG, REGIONAL_BUSINESS)
}
