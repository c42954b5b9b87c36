"""Silences and maintenance windows: matching events get ``suppressed:silenced``, unclaimed.

- ``matchers``: a silence's or window's scope (CEL over ``event``, hook, source), compiled
  and type-checked exactly like a hook's ``when:``.
- ``windows``: recurring maintenance windows from ``budgets.yaml`` (cron or RRULE, a time
  zone, a duration); the recurrence and daylight-saving arithmetic is croniter's and
  python-dateutil's.
- ``gate``: what the pipeline asks per match: the active silences, read from the
  ``SilenceStore`` once an interval, and the windows open at ``now``.
- ``held``: what a silence held back, kept per silence and hook, summarised in one run per
  hook by the sweep once the silence or window has ended.
"""
