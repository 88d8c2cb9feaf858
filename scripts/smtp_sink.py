#!/usr/bin/env python3
"""A local SMTP sink for tests: accepts messages and stores each one as its own `.eml` file.

    python3 scripts/smtp_sink.py --host 127.0.0.1 --port 2525 --dir DIR [--auth USER:PASS]

Each message is written to DIR under a hidden temporary name, then renamed to `<ns>-<n>.eml`, so a
reader listing `*.eml` never sees half a file; names sort in arrival order, across restarts too. Like a relay adding
`Received:`, the sink puts two headers in front of the message as received: `X-Sink-Mail-From` and
`X-Sink-Rcpt-To` (the envelope, comma-separated).

Prints `ready` on stdout once it listens. Exits with status 0 on SIGTERM or SIGINT.

Recipients at two reserved domains fail on purpose, for testing error handling:

    anything@reject.test   550 at RCPT TO (permanent)
    anything@defer.test    451 at RCPT TO (transient)
    anything@slow.test     stored at once, but answered only 5 seconds later (a client killed
                           meanwhile never learns it was delivered)

With --auth, AUTH PLAIN and LOGIN are offered over the plain connection (a test sink has no TLS) and
every message must be authenticated with those credentials.

Needs `aiosmtpd` (scripts/setup installs it).
"""

import argparse
import asyncio
import itertools
import logging
import os
import signal
import sys
import time
import warnings

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

REJECT_DOMAIN = "@reject.test"
DEFER_DOMAIN = "@defer.test"
SLOW_DOMAIN = "@slow.test"
SLOW_SECONDS = 5


class Sink:
    """aiosmtpd handler: checks recipients, stores messages."""

    def __init__(self, directory):
        self.directory = directory
        self.counter = itertools.count(1)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        lowered = address.lower()
        if lowered.endswith(REJECT_DOMAIN):
            return "550 5.1.1 mailbox unavailable"
        if lowered.endswith(DEFER_DOMAIN):
            return "451 4.3.0 try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        trace = (
            f"X-Sink-Mail-From: {envelope.mail_from}\r\n"
            f"X-Sink-Rcpt-To: {', '.join(envelope.rcpt_tos)}\r\n"
        ).encode()
        content = envelope.original_content or envelope.content
        if isinstance(content, str):
            content = content.encode()
        name = f"{time.time_ns():020d}-{next(self.counter):06d}.eml"
        temporary = os.path.join(self.directory, f".{name}.tmp")
        with open(temporary, "wb") as out:
            out.write(trace + content)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, os.path.join(self.directory, name))
        if any(r.lower().endswith(SLOW_DOMAIN) for r in envelope.rcpt_tos):
            await asyncio.sleep(SLOW_SECONDS)
        return "250 2.0.0 stored"


def authenticator_for(credentials):
    user, _, password = credentials.partition(":")
    expected = (user.encode(), password.encode())

    def authenticate(server, session, envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == expected
        # handled=False: aiosmtpd answers 535 itself; with the default it would answer nothing.
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

    return authenticate


async def serve(args):
    os.makedirs(args.dir, exist_ok=True)
    handler = Sink(args.dir)
    auth = {}
    if args.auth:
        # Plain-text AUTH is the point here; keep aiosmtpd's warnings about it out of test output.
        warnings.filterwarnings("ignore", message="Requiring AUTH while not requiring TLS")
        logging.getLogger("mail.log").setLevel(logging.ERROR)
        auth = {
            "authenticator": authenticator_for(args.auth),
            "auth_required": True,
            "auth_require_tls": False,
        }

    def factory():
        # A fixed hostname: the default asks DNS for the machine's FQDN, which can stall start-up.
        return SMTP(handler, hostname="smtp-sink.test", enable_SMTPUTF8=True, timeout=30, **auth)

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)

    server = await loop.create_server(factory, host=args.host, port=args.port, reuse_address=True)
    print("ready", flush=True)
    await stop.wait()
    server.close()
    await server.wait_closed()


def main():
    parser = argparse.ArgumentParser(description="SMTP sink for tests: stores each message as an .eml file.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dir", required=True, help="where .eml files are written")
    parser.add_argument("--auth", metavar="USER:PASS", help="require AUTH with these credentials")
    args = parser.parse_args()
    try:
        asyncio.run(serve(args))
    except OSError as error:
        print(f"smtp_sink: cannot listen on {args.host}:{args.port}: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
