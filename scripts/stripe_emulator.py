"""Runs the Stripe API emulator (localstripe) for the tests: on loopback only, and in memory.

localstripe's own command listens on every interface and pickles its store to a fixed file on every
write; the tests want neither, so this starts the same application on 127.0.0.1 with the store kept
in memory. Usage: stripe_emulator.py PORT
"""

import sys

from aiohttp import web
from localstripe import resources

resources.Store.dump_to_disk = lambda self: None

from localstripe.server import app  # noqa: E402  (after the store is patched)

web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)
