"""Following every dispatched agent task to its end, and bringing its finding back.

A dispatch answers as soon as the agent has created the task; what the agent found comes
later. ``tracker.start`` stores the task (``state.base.TaskStore``) right after the dispatch;
``tracker.tick``, run by every sweep tick, asks the agent about the tasks that are due
(``GetTask`` / ``tasks/get``, ``agent_calls``), with backoff and a deadline, and records each
task's end in the audit trail once (``outcome`` ``task:<state>``, with ``task_state``,
``finding``, ``finished_at`` and ``tokens``).
"""
