"""Sending a task's finding where the hook says (``report:``), each destination on its own.

``deliver`` runs when a followed task ends (``tracking``): one message per destination of the
hook's configuration, each escaped for its format (``formats``), each with its own status
(``sent``, ``failed: <why>``, ``skipped: <why>``) recorded in the audit record of the task's end
(``extra["report.<n>.<kind>"]``). Transient failures (connection errors, 429, 5xx) are retried
within the delivery's time budget by the dispatchers' retrying sender. A ``kubernetes``
destination is not sent from here (the functions hold no cluster credentials): its status is
``pending`` and the in-cluster forwarder writes the Events from that record, then records their
status (``forwarder.finding_events``).
"""
