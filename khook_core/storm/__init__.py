"""Storm control: what holds a run back (circuit, coalescing, budgets) and what it holds.

Modules, imported by name (this package imports none of them, so the state backends can use
the pure-data ``records`` without loading the rest): ``records`` (summaries and backlogs).
"""
