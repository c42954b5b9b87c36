"""Live configuration: the config directory as a versioned snapshot in the state store.

Modules are imported by name: ``snapshot`` (files to snapshot and back, through the one loader),
``publishing`` (validate, then publish), ``reload`` (every function's refresh, once an interval).
"""
