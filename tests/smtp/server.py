"""The SMTP server Steward's mail tests send to (crates/testpeers/src/smtp.rs starts it): PyPI's
aiosmtpd on one loopback port, storing every message it accepts, byte for byte as received, in
a maildir (DIR/new/...), preceded by trace headers the tests read:

    X-Test-Mail-From: <envelope sender>
    X-Test-Rcpt-To:   <envelope recipients, comma-separated>
    X-Test-Tls:       yes | no      (whether the message came over TLS)
    X-Test-Auth:      <the user that authenticated, or nothing>

Recipients whose local part starts with "reject" are refused with 550, those starting with
"defer" with 451, so a client's handling of permanent and transient refusals is tested against
a real server. Test use only: the credentials come on the command line, and --auth-without-tls
lets AUTH run unencrypted.

    python server.py --port PORT --maildir DIR [--starttls | --implicit-tls] --cert C --key K
                     [--user U --password P [--auth-without-tls]]
"""

import argparse
import asyncio
import mailbox
import ssl
import sys

try:
    from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword
except ImportError:
    sys.exit(
        "aiosmtpd is not installed in this Python: run `bash scripts/python-venv.sh` "
        "(it installs tests/sdk/requirements.txt)"
    )


class Store:
    """aiosmtpd handler: refuses the test's reject/defer recipients, stores the rest."""

    def __init__(self, maildir):
        self.box = mailbox.Maildir(maildir, create=True)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.split("@", 1)[0].lower()
        if local.startswith("reject"):
            return "550 5.1.1 Mailbox unavailable"
        if local.startswith("defer"):
            return "451 4.3.0 Try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        tls = server.transport.get_extra_info("ssl_object") is not None
        user = session.auth_data if session.authenticated else ""
        trace = (
            f"X-Test-Mail-From: {envelope.mail_from}\r\n"
            f"X-Test-Rcpt-To: {', '.join(envelope.rcpt_tos)}\r\n"
            f"X-Test-Tls: {'yes' if tls else 'no'}\r\n"
            f"X-Test-Auth: {user}\r\n"
        )
        # Maildir.add writes to tmp/ and renames into new/: a reader never sees half a message.
        self.box.add(trace.encode() + envelope.original_content)
        return "250 2.0.0 Stored"


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--maildir", required=True)
    tls_mode = p.add_mutually_exclusive_group()
    tls_mode.add_argument("--starttls", action="store_true", help="offer and require STARTTLS")
    tls_mode.add_argument("--implicit-tls", action="store_true", help="TLS from the first byte")
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--user")
    p.add_argument("--password")
    p.add_argument("--auth-without-tls", action="store_true")
    args = p.parse_args()

    tls = None
    if args.starttls or args.implicit_tls:
        if not (args.cert and args.key):
            p.error("TLS needs --cert and --key")
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(args.cert, args.key)

    # A fixed hostname: the default, socket.getfqdn(), may wait on DNS.
    options = {"hostname": "steward-test-smtp", "ident": "Steward test SMTP (aiosmtpd)"}
    if args.starttls:
        options.update(tls_context=tls, require_starttls=True)
    if args.user:

        def authenticator(server, session, envelope, mechanism, auth_data):
            ok = (
                isinstance(auth_data, LoginPassword)
                and auth_data.login.decode() == args.user
                and auth_data.password.decode() == args.password
            )
            # handled=False: aiosmtpd then answers a failure with 535 itself.
            return AuthResult(success=ok, handled=False, auth_data=args.user if ok else None)

        options.update(
            authenticator=authenticator,
            auth_required=True,
            # aiosmtpd counts only STARTTLS as TLS; with implicit TLS the whole session is.
            auth_require_tls=not (args.auth_without_tls or args.implicit_tls),
        )

    handler = Store(args.maildir)

    async def serve():
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: SMTP(handler, loop=loop, **options),
            host=args.host,
            port=args.port,
            ssl=tls if args.implicit_tls else None,
        )
        async with server:
            await server.serve_forever()

    asyncio.run(serve())


if __name__ == "__main__":
    main()
