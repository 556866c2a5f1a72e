"""Times for people: local time of day to the minute, UTC on request, and how long ago (one format for
every screen)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


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
    """``2026-11-30 14:03`` in the machine's local time zone (the text unchanged if not a time).

    A time whose UTC offset is not today's (across a daylight-saving change) carries its own,
    ``2026-07-01 08:00 -04``, so it never reads as if it were in the zone :func:`zone` labels.
    """
    moment = parse(stamp)
    if moment is None:
        return str(stamp)
    shown = moment.astimezone()
    text = shown.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")
    offset = shown.utcoffset()
    if offset != datetime.now().astimezone().utcoffset():
        text += " " + _offset(offset, short=True)
    return text


def _offset(offset: timedelta | None, *, short: bool = False) -> str:
    """``+01:00`` (``+01`` when ``short`` and on the hour)."""
    minutes = int(offset.total_seconds() // 60) if offset else 0
    sign = "+" if minutes >= 0 else "-"
    hours, rest = divmod(abs(minutes), 60)
    return f"{sign}{hours:02d}" if short and not rest else f"{sign}{hours:02d}:{rest:02d}"


def utc(stamp: str | datetime) -> str:
    """``2026-11-30T13:03:07Z`` (UTC to the second; the text unchanged if not a time)."""
    moment = parse(stamp)
    if moment is None:
        return str(stamp)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def zone() -> str:
    """Today's local offset as people read it: ``UTC+01:00`` (or ``UTC``).

    Column headings use it; :func:`local` adds the offset to a time that has another one.
    """
    offset = datetime.now().astimezone().utcoffset()
    return f"UTC{_offset(offset)}" if offset else "UTC"


def when(iso: str, now: datetime) -> str:
    """``11:31:05 CET (10:31:05 UTC), 12 min ago``: local time, UTC, and how long ago.

    The date is shown when it is not today's; UTC only once when local time is UTC.
    """
    moment = parse(iso)
    if moment is None:
        return iso
    local, utc = moment.astimezone(), moment.astimezone(UTC)
    day = "" if local.date() == now.astimezone().date() else "%Y-%m-%d "
    shown = local.strftime(f"{day}%H:%M:%S %Z")
    if local.utcoffset() != utc.utcoffset():
        shown += utc.strftime(f" ({'' if utc.date() == local.date() else '%Y-%m-%d '}%H:%M:%S UTC)")
    return f"{shown}, {ago(now - utc)}"


def ago(delta: timedelta) -> str:
    """``45 s ago``, ``12 min ago``, ``3 h 5 min ago``, ``2 days ago``.

    ``just now`` up to 2 minutes ahead: a tag written within the same second as another is
    stamped a second later (assignments stay ordered); beyond that the clocks disagree.
    """
    seconds = int(delta.total_seconds())
    if seconds < -120:
        return "in the future (clock skew?)"
    return "just now" if seconds <= 0 else f"{span(delta)} ago"


def span(delta: timedelta) -> str:
    """How long, for people: ``45 s``, ``12 min``, ``3 h 5 min``, ``1 day 3 h``, ``2 days``."""
    seconds = max(0, int(delta.total_seconds()))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min"
    if seconds < 86400:
        return f"{seconds // 3600} h {seconds % 3600 // 60} min"
    days, hours = seconds // 86400, seconds % 86400 // 3600
    return f"{days} day{'' if days == 1 else 's'}" + (f" {hours} h" if hours else "")
