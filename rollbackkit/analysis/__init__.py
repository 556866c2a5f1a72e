"""Pure checks over frames and bundles: schema compatibility, parity, drift, gates, diffs.

Nothing here opens git, DVC, the prediction log or HTTP.
"""
