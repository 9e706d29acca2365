"""Cost estimation, a pure room: requests -> tokens -> money.

    prices.json / prices.py   the dated price table and prices: overrides (PriceTable)
    estimate.py               JSONL request lines -> Estimate (tokens, pages, flags)
    heuristic.py              token counts without a tokenizer (calibrated weights)
    tokenizers.py             exact counts with mistral-common's shipped tokenizers
    pricing.py                Estimate or measured usage -> Cost (batch discount applied)
    budget.py                 a plan's changes -> PlanCost; the safety.max_cost guard
    actuals.py                results' usage -> actual tokens and what they cost
    money.py                  Decimal dollars: parsing, exact sums, display rounding

Nothing here performs I/O beyond reading its own package data (and, for exact counts, the
tokenizer files inside the installed mistral-common): callers hand in iterables of request
or result lines and get plain frozen dataclasses back. mistral-common is imported only
when an exact count is asked for.
"""
