"""The events a notify target can ask for: one home for their names and what each means."""

from __future__ import annotations

EVENTS: dict[str, str] = {
    "deploy": "a version took all of an environment's traffic",
    "canary": "a version went out as a canary",
    "shadow": "a version went out as a shadow (mirrored traffic)",
    "step": "a stepped rollout moved its canary to the next step",
    "promote": "a canary or shadow became the live version",
    "rollback": "a person rolled back",
    "auto-rollback": "the watchdog rolled back after a gate failed",
    "gate-failed": "a deployment's gate decision became rollback (once, again only after it passed)",
    "paused": "a rollout paused (inconclusive gates, no new rows, an evaluation error) for the target's pause_grace",
    "resumed": "a rollout whose paused notice was sent resumed (to the targets that got the paused)",
    "not-everywhere": "a traffic change some replicas of a shared store have not made",
    "runbook": "a runbook finished (its verdict and notebook)",
    "test": "rollbackkit notify test",
}
"""Event name -> what it means (README "### Notifications" lists the same)."""
