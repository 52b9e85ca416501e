#!/usr/bin/python3
"""An SMTP sink for Gala's tests and local stack (aiosmtpd, Debian's python3-aiosmtpd).

Accepts every message (AUTH PLAIN/LOGIN with any credentials is accepted but
not required; no STARTTLS) but for recipients whose local part starts with
"refused-", which get a permanent "550" (a mailbox that does not exist), and
writes one file per recipient:

    DIR/<seq>-<rcpt>.eml     e.g. mail/000007-alice@example.com.eml

<seq> is zero-padded and increasing (it continues after the files already in
DIR), <rcpt> is the lower-cased address with anything unusual replaced by
"_". Each file is written to a temporary name and renamed, so a test polling
DIR never reads half a message. The file holds two envelope header lines
(X-Envelope-From, X-Envelope-To) followed by the message exactly as received
(after SMTP dot-unstuffing, line endings untouched).

    /usr/bin/python3 tests/fakes/smtp_sink.py --dir DIR [--host 127.0.0.1] [--port 0]

Prints "ready <port>" on stdout once listening; stops on SIGTERM or SIGINT.
"""

import argparse
import asyncio
import ipaddress
import os
import re
import signal
import socket
import sys
import threading
import warnings

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

UNSAFE = re.compile(r"[^a-z0-9@._+-]")


class Sink:
    def __init__(self, directory):
        self.dir = directory
        self.lock = threading.Lock()
        self.seq = 0
        for name in os.listdir(directory):
            m = re.match(r"^(\d+)-", name)
            if m:
                self.seq = max(self.seq, int(m.group(1)))

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.lower().startswith("refused-"):
            return "550 5.1.1 No such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        data = envelope.original_content or envelope.content
        if isinstance(data, str):
            data = data.encode("utf-8", "surrogateescape")
        for rcpt in envelope.rcpt_tos:
            head = ("X-Envelope-From: %s\r\nX-Envelope-To: %s\r\n"
                    % (envelope.mail_from, rcpt)).encode("utf-8", "replace")
            with self.lock:
                self.seq += 1
                seq = self.seq
            safe = UNSAFE.sub("_", rcpt.lower())[:200]
            final = os.path.join(self.dir, "%06d-%s.eml" % (seq, safe))
            tmp = os.path.join(self.dir, ".tmp-%06d" % seq)
            with open(tmp, "wb") as f:
                f.write(head + data)
            os.rename(tmp, final)
        return "250 OK"


def accept_any_login(server, session, envelope, mechanism, auth_data):
    # Tests point SMTP_USERNAME/SMTP_PASSWORD anywhere; the sink only checks
    # that the client speaks AUTH correctly, not what it sends.
    return AuthResult(success=True)


class SinkController(Controller):
    """Binds port 0 race-free: aiosmtpd's own readiness probe connects to
    self.port, so the kernel-chosen port is read back before the probe."""

    def _create_server(self):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.hostname, self.port))
        self.port = sock.getsockname()[1]
        return self.loop.create_server(self._factory_invoker, sock=sock)


def main(argv=None):
    # aiosmtpd 1.4 warns on every AUTH about an attribute it sets itself.
    warnings.filterwarnings("ignore", message="Session.login_data is deprecated")
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dir", required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    args = ap.parse_args(argv)
    if not ipaddress.ip_address(args.host).is_loopback:
        ap.error("--host must be a loopback address")
    os.makedirs(args.dir, exist_ok=True)

    controller = SinkController(
        Sink(args.dir), hostname=args.host, port=args.port,
        authenticator=accept_any_login, auth_require_tls=False,
        auth_required=False, data_size_limit=10 * 1024 * 1024)
    controller.start()
    print("ready %d" % controller.port, flush=True)

    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    done.wait()
    controller.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
