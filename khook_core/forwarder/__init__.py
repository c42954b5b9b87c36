"""The in-cluster forwarder: Kubernetes Events in, pre-filtered Pub/Sub messages out.

Pieces, each in its own module: ``config`` (flags and environment), ``kube_http`` and ``kube``
(a lean Kubernetes client, raw objects), ``watching`` (list then watch, one testable step and a
thin loop), ``filtering`` (the mapping-table pre-filter), ``publishing`` and ``pubsub_rest``
(bounded queue, batches over Pub/Sub's REST API), ``probes`` and ``metrics`` (operations),
``app`` (the assembly), ``cli`` (the ``khook-forwarder`` command). docs/forwarder.md describes
how to run it.
"""
