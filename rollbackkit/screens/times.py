"""Times for people: local time of day to the minute, UTC on request (one format for every screen)."""

from __future__ import annotations

from datetime import UTC, datetime


def parse(stamp: str | datetime) -> datetime | None:
    """An ISO time (naive means UTC) as an aware datetime; None when it is not one."""
    if isinstance(stamp, datetime):
        moment = stamp
    else:
        try:
            moment = datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))
        except ValueError:
            return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def local(stamp: str | datetime, *, seconds: bool = False) -> str:
    """``2026-11-30 14:03`` in the machine's local time zone (the text unchanged if not a time)."""
    moment = parse(stamp)
    if moment is None:
        return str(stamp)
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


def utc(stamp: str | datetime) -> str:
    """``2026-11-30T13:03:07Z`` (UTC to the second; the text unchanged if not a time)."""
    moment = parse(stamp)
    if moment is None:
        return str(stamp)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def zone() -> str:
    """The local zone as people read it: ``UTC+01:00`` (or ``UTC``)."""
    offset = datetime.now().astimezone().utcoffset()
    if not offset:
        return "UTC"
    minutes = int(offset.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    return f"UTC{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
