"""Signed webhook notifications of what rollbackkit did (deploys, rollbacks, gate failures, runbooks).

A layer of its own between serving and the registry: servers, operations and the CLI hand it
what happened; it needs nothing above the registry (the journal records each delivery).
"""
