"""Shared by the slixmpp interop scripts: machine-readable output and the run-until-done loop."""
import asyncio
import sys


def out(line: str) -> None:
    sys.stdout.write(line + '\n')
    sys.stdout.flush()


def one_line(text: str) -> str:
    return text.replace('\\', '\\\\').replace('\n', '\\n')


def run_until_done(xmpp, timeout: float) -> int:
    """Wait for `xmpp.done` (a future the script resolves), close the stream, return an exit code."""
    try:
        ok = xmpp.loop.run_until_complete(asyncio.wait_for(asyncio.shield(xmpp.done), timeout))
    except asyncio.TimeoutError:
        out(f'FAIL timeout after {timeout}s')
        ok = False
    if ok:
        # Orderly close: </stream:stream> and wait for the server's.
        try:
            xmpp.loop.run_until_complete(asyncio.wait_for(xmpp.disconnect(wait=2.0), 5))
        except Exception:  # noqa: BLE001
            pass
        out('EVENT closed' if xmpp.closed else 'EVENT close_timeout')
    else:
        xmpp.abort()
    # Cancel slixmpp's background tasks so the interpreter exits quietly.
    pending = [t for t in asyncio.all_tasks(xmpp.loop) if not t.done()]
    for t in pending:
        t.cancel()
    xmpp.loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
    return 0 if ok else 1
