"""Reads an iCalendar document on standard input with a real parser (the `icalendar` package that
scripts/setup installs into var/venv) and prints what a calendar app would see, as JSON: the
calendar's name and every event with its instants in UTC. Exits non-zero, saying why on standard
error, when the document does not parse or breaks a line rule of RFC 5545 (CRLF line ends, lines
of at most 75 octets). The calendar feed tests run it as a subprocess."""

import json
import sys
from datetime import timezone

import icalendar


def main() -> int:
    raw = sys.stdin.buffer.read()
    if not raw.endswith(b"\r\n"):
        print("the document does not end in CRLF", file=sys.stderr)
        return 1
    for number, line in enumerate(raw.split(b"\r\n")[:-1], start=1):
        if b"\n" in line or b"\r" in line:
            print(f"line {number} has a bare CR or LF", file=sys.stderr)
            return 1
        if len(line) > 75:
            print(f"line {number} is {len(line)} octets long", file=sys.stderr)
            return 1
        line.decode("utf-8")  # every folded piece is valid UTF-8 on its own
    calendar = icalendar.Calendar.from_ical(raw.decode("utf-8"))
    errors = [str(e) for component in calendar.walk() for e in getattr(component, "errors", [])]
    if errors:
        print(f"parse errors: {errors}", file=sys.stderr)
        return 1

    def instant(component, name):
        value = component.decoded(name)
        if value.tzinfo is None:
            raise ValueError(f"{name} is a floating time")
        return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")

    events = []
    for event in calendar.walk("VEVENT"):
        events.append(
            {
                "uid": str(event["UID"]),
                "summary": str(event["SUMMARY"]),
                "location": str(event.get("LOCATION", "")),
                "status": str(event.get("STATUS", "")),
                "sequence": int(event.get("SEQUENCE", 0)),
                "start": instant(event, "DTSTART"),
                "end": instant(event, "DTEND"),
                "stamp": instant(event, "DTSTAMP"),
            }
        )
    json.dump(
        {
            "version": str(calendar.get("VERSION", "")),
            "prodid": str(calendar.get("PRODID", "")),
            "name": str(calendar.get("X-WR-CALNAME", "")),
            "events": events,
        },
        sys.stdout,
        ensure_ascii=False,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
