"""Redaction: credentials and chosen fields masked before an event leaves the pipeline.

Modules, imported by name: ``detectors`` (the credential formats), ``keyed`` (the keyed-hash
masks), ``pii`` (opt-in personal data), ``rules`` (a source's ``redact:`` block), ``redactor``
(the step the pipeline calls).
"""
