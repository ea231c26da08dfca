// SASL attempts as the server reports them: one always-on line per outcome, which is what tests
// count ("exactly one SASL attempt") without looking at the wire:
//   authenticated <user>@<host> from <ip> with <MECHANISM> (SASL1|SASL2)
//   authentication failure for <user>@<host>|unknown user from <ip>: <condition> (<text>)
//   authentication aborted by <user>@<host>|unknown user from <ip> (<MECHANISM>)
import assert from 'node:assert/strict';
import type { TestServer } from './server.ts';

export type SaslOutcome =
  | { kind: 'success'; who: string; mechanism: string; protocol: string; line: string }
  | { kind: 'failure'; who: string; condition: string; text: string; line: string }
  | { kind: 'abort'; who: string; mechanism: string; line: string };

const SUCCESS = /: authenticated (\S+) from \S+ with (\S+) \((SASL\d*)\)$/;
const FAILURE = /: authentication failure for (unknown user|\S+) from \S+: (\S+) \((.*)\)$/;
const ABORT = /: authentication aborted by (unknown user|\S+) from \S+ \((.*)\)$/;

/** Every SASL outcome line in `output`, in order. `who` is a bare JID or 'unknown user'. */
export function saslOutcomes(output: string): SaslOutcome[] {
  const outcomes: SaslOutcome[] = [];
  for (const line of output.split('\n')) {
    let m = SUCCESS.exec(line);
    if (m) {
      outcomes.push({ kind: 'success', who: m[1]!, mechanism: m[2]!, protocol: m[3]!, line });
      continue;
    }
    m = FAILURE.exec(line);
    if (m) {
      outcomes.push({ kind: 'failure', who: m[1]!, condition: m[2]!, text: m[3]!, line });
      continue;
    }
    m = ABORT.exec(line);
    if (m) outcomes.push({ kind: 'abort', who: m[1]!, mechanism: m[2]!, line });
  }
  return outcomes;
}

/**
 * The outcomes for `jid` (a bare JID) in the server's output since offset `from`. Failures and
 * aborts the server could not tie to a user ('unknown user') count too: a client that sent a
 * malformed first message has still made an attempt.
 */
export function attemptsFor(server: TestServer, jid: string, from = 0): SaslOutcome[] {
  return saslOutcomes(server.output.slice(from)).filter((o) => o.who === jid || (o.kind !== 'success' && o.who === 'unknown user'));
}

/** The server's SASL lines for `jid` since `from`, for failure messages. */
export function describeAttempts(server: TestServer, jid: string, from = 0): string {
  const lines = attemptsFor(server, jid, from).map((o) => o.line);
  return `server's SASL lines for ${jid}:\n${lines.length ? lines.join('\n') : '(none)'}`;
}

/**
 * Assert that `jid` logged in on its first SASL attempt since `from`: exactly one attempt, a
 * success, with a mechanism matching `mechanism` (SCRAM by default), no failure, no abort.
 * Waits (up to `timeoutMs`) for the success line, since the server's output arrives on its own
 * pipe. Returns the mechanism.
 */
export async function assertFirstAttemptLogin(server: TestServer, jid: string, from: number, mechanism: RegExp = /^SCRAM-/, timeoutMs = 5000): Promise<string> {
  const escaped = jid.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  await server.waitForOutput(new RegExp(`: authenticated ${escaped} from `), timeoutMs, from).catch(() => undefined);
  const attempts = attemptsFor(server, jid, from);
  const detail = describeAttempts(server, jid, from);
  // (Messages never read "<x>: expected …": mocha would print only <x>.)
  assert.equal(attempts.length, 1, `${jid} made ${attempts.length} SASL attempts, not exactly one\n${detail}`);
  const [only] = attempts;
  assert.equal(only!.kind, 'success', `the one SASL attempt of ${jid} did not succeed\n${detail}`);
  const used = (only as Extract<SaslOutcome, { kind: 'success' }>).mechanism;
  assert.match(used, mechanism, `${jid} logged in with ${used}\n${detail}`);
  return used;
}
