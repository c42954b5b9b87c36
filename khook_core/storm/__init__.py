"""Storm control: what holds a run back (circuit, coalescing, budgets) and what it holds.

Modules, imported by name (this package imports none of them, so the state backends can use
the pure-data ``records`` without loading the rest):

- ``config``: ``budgets.yaml`` and the hook extensions (``coalesce``, ``rateLimit``);
- ``records``: summaries, backlogs and the typed ``BacklogKey`` (pure data);
- ``keys``: every key storm control writes to the store, built in one place;
- ``admission``: ``admit()``, the gates of one run as a context manager that gives back what
  the run took unless it started;
- ``sweep``: the runs held-back events are owed once their storm went quiet.
"""
