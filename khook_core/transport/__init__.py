"""Transports: turning a delivery (a Pub/Sub push, an HTTP request) into a payload and back.

Each module decodes one transport's envelope and answers in that transport's terms, so the
functions' ``main.py`` files stay a few lines of glue and share one behaviour.
"""
