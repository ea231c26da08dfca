#!/usr/bin/python3
# Interop client for Cadence's remote administration (issue 13), driven by slixmpp's own plugins
# with their default settings: xep_0050 (ad-hoc commands, its session workflow as slixmpp's
# adhoc examples use it) and xep_0009 (Jabber-RPC). Run with /usr/bin/python3 (Debian's
# python3-slixmpp 1.8.3).
#
# Prints one line per event on stdout:
#   EVENT session_start jid=admin@localhost/slix
#   EVENT command node=<node> name=<name>        (commands: each command the server lists)
#   EVENT form node=<node> title=<title>          (commands --node: the form received)
#   EVENT status <completed|executing|canceled>   (the last command reply)
#   EVENT note type=<info|warn|error> text=...
#   EVENT field var=<var> value=<v1|v2>           (fields of a result form)
#   EVENT command_error condition=<condition>
#   EVENT rpc_result value=<repr of the Python value>
#   EVENT rpc_fault code=<code> string=<string>
#   EVENT rpc_error condition=<condition>
#   EVENT done / FAIL <reason>
#
# Actions:
#   commands  list the server's commands; with --node, execute it, fill the form with --field
#             var=value (repeatable; repeated vars make a list) and complete it.
#   rpc       call --method with --param i:<int> | s:<string> (repeatable, in order).
import argparse
import asyncio
import logging
import sys

from slixmpp_common import one_line, out, run_until_done
from slixmpp import ClientXMPP
from slixmpp.exceptions import IqError
from slixmpp.plugins.xep_0009.binding import py2xml, xml2py, xml2fault


class Remote(ClientXMPP):
    def __init__(self, args: argparse.Namespace) -> None:
        super().__init__(args.jid, args.password)
        self.args = args
        self.done: asyncio.Future = self.loop.create_future()
        self.closed = False
        self.register_plugin('xep_0030')
        self.register_plugin('xep_0004')
        self.register_plugin('xep_0050')
        self.register_plugin('xep_0009')
        self.add_event_handler('session_start', self.on_session_start)
        self.add_event_handler('failed_all_auth', lambda _e: self.finish(False, 'authentication failed'))
        self.add_event_handler('disconnected', self.on_disconnected)

    def on_disconnected(self, reason) -> None:
        self.closed = True
        self.finish(False, f'disconnected {reason}')

    def finish(self, ok: bool, reason: str = '') -> None:
        if self.done.done():
            return
        out('EVENT done' if ok else f'FAIL {reason}')
        self.done.set_result(ok)

    async def on_session_start(self, _event) -> None:
        out(f'EVENT session_start jid={self.boundjid.full}')
        try:
            if self.args.action == 'commands':
                await self.commands()
            else:
                await self.rpc()
        except Exception as exc:  # noqa: BLE001 - reported to the test
            self.finish(False, f'{type(exc).__name__}: {one_line(str(exc))}')

    # -- ad-hoc commands ---------------------------------------------------------------------------

    async def commands(self) -> None:
        domain = self.boundjid.domain
        items = await self['xep_0050'].get_commands(jid=domain)
        for jid, node, name in items['disco_items']['items']:
            out(f'EVENT command node={node} name={one_line(name or "")}')
        if not self.args.node:
            self.finish(True)
            return
        session = {'next': self.on_form, 'error': self.on_error}
        self['xep_0050'].start_command(jid=domain, node=self.args.node, session=session)

    def on_form(self, iq, session) -> None:
        form = iq['command']['form']
        out(f'EVENT form node={iq["command"]["node"]} title={one_line(form["title"] or "")}')
        if iq['command']['status'] == 'completed':
            self.report(iq)
            return
        answers: dict = {}
        for item in self.args.field:
            var, _, value = item.partition('=')
            if var in answers:
                answers[var] = (answers[var] if isinstance(answers[var], list) else [answers[var]]) + [value]
            else:
                answers[var] = value
        form['type'] = 'submit'
        form['values'] = answers
        session['payload'] = form
        session['next'] = self.on_complete
        self['xep_0050'].complete_command(session)

    def on_complete(self, iq, session) -> None:
        self.report(iq)

    def report(self, iq) -> None:
        out(f'EVENT status {iq["command"]["status"]}')
        for ntype, text in iq['command']['notes']:
            out(f'EVENT note type={ntype} text={one_line(text)}')
        form = iq['command']['form']
        for var, field in form.get_fields().items():
            value = field['value']
            shown = '|'.join(str(v) for v in value) if isinstance(value, list) else str(value)
            out(f'EVENT field var={var} value={one_line(shown)}')
        self.finish(True)

    def on_error(self, iq, session) -> None:
        out(f'EVENT command_error condition={iq["error"]["condition"]}')
        self['xep_0050'].terminate_command(session)
        self.finish(True)

    # -- Jabber-RPC --------------------------------------------------------------------------------

    async def rpc(self) -> None:
        params = []
        for p in self.args.param:
            kind, _, value = p.partition(':')
            params.append(int(value) if kind == 'i' else value)
        iq = self['xep_0009'].make_iq_method_call(self.boundjid.domain, self.args.method, py2xml(*params))
        try:
            resp = await iq.send()
        except IqError as err:
            out(f'EVENT rpc_error condition={err.iq["error"]["condition"]}')
            self.finish(True)
            return
        response = resp['rpc_query']['method_response']
        if response['fault'] is not None:
            fault = xml2fault(response['fault'])
            out(f'EVENT rpc_fault code={fault["code"]} string={one_line(str(fault["string"]))}')
        else:
            out(f'EVENT rpc_result value={one_line(repr(xml2py(response["params"])))}')
        self.finish(True)


def main() -> int:
    p = argparse.ArgumentParser(description='slixmpp remote administration client for Cadence tests')
    p.add_argument('--jid', required=True)
    p.add_argument('--password', required=True)
    p.add_argument('--host', default='127.0.0.1')
    p.add_argument('--port', type=int, required=True)
    p.add_argument('--action', choices=['commands', 'rpc'], required=True)
    p.add_argument('--node', default='')
    p.add_argument('--field', action='append', default=[])
    p.add_argument('--method', default='')
    p.add_argument('--param', action='append', default=[])
    p.add_argument('--timeout', type=float, default=20.0)
    p.add_argument('--debug', action='store_true')
    args = p.parse_args()
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.ERROR,
                        stream=sys.stderr, format='%(levelname)s %(name)s: %(message)s')
    xmpp = Remote(args)
    xmpp.connect((args.host, args.port))
    return run_until_done(xmpp, args.timeout)


if __name__ == '__main__':
    sys.exit(main())
