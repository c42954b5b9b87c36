"""Approvals: a person answers an agent task that paused for them (``input-required``).

``opening.open_for`` (called by the tracker) stores an approval for each pause; ``deciding``
validates a person's decision against the request, stores it once (conditional write) and only
then sends it to the agent on the same task and context (kagent's HITL v1 extension, ``hitl``);
``deciding.expire_due`` (every sweep tick) rejects the approvals whose deadline passed.
"""
