"""Garbage-collector pauses while serving: the heap is frozen after every model load.

A server holds a few hundred thousand long-lived objects (pandas, scikit-learn, the
loaded bundles, starlette). CPython's full collection walks all of them, often enough
under steady one-row traffic to stall a request right at p99, with or without the
prediction log (README "Performance" has the measured pause).
:func:`settle_heap` collects once and moves the survivors to the permanent generation
(:func:`gc.freeze`); later collections walk only what requests allocate.

Only processes rollbackkit owns do this (``rollbackkit serve``, the prediction-log
process), never a notebook's kernel. The cost: cyclic garbage among frozen objects is
never collected. Reference counting frees nearly everything (an unloaded model included,
unless it sits in a reference cycle), so the most a server keeps is one model per deploy.
"""

from __future__ import annotations

import gc


def settle_heap() -> None:
    """Collect garbage once, then exempt every surviving object from later collections."""
    gc.collect()
    gc.freeze()
