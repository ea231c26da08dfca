// Ad-Hoc Commands (XEP-0050 1.3): the command engine, without any I/O. A module declares commands
// (node, name, who may run them, stages with data forms, what completing does); the engine keeps
// the sessions (sessionid, current stage, the values given at each stage, expiry), decides which
// actions each stage allows, answers disco#items / disco#info for the command nodes, and turns one
// parsed `<command/>` request into either the `<command/>` reply payload or a typed error carrying
// the XEP's specific condition (§4.4). Storage of nothing: sessions live in memory, as the XEP
// leaves their lifetime to the responder. doc/remote-admin.md describes the glue (mod_adhoc).
import { randomBytes } from 'node:crypto';
import { Element } from '@xmpp/xml';
import { CoreError, type StanzaErrorCondition, type StanzaErrorType } from './errors.ts';
import { NS_DATA, form, parseForm, readSubmission, type FormSpec, type ParsedForm } from './dataforms.ts';
import { prep } from './jid.ts';
import { NS, reply } from './stanza.ts';

export const NS_COMMANDS = 'http://jabber.org/protocol/commands';

/** The five actions a requester may ask for (§4.1). */
export type AdhocAction = 'execute' | 'cancel' | 'prev' | 'next' | 'complete';
/** The actions a stage can offer inside `<actions/>` (§4.2). */
export type StageAction = 'prev' | 'next' | 'complete';
export type AdhocStatus = 'executing' | 'completed' | 'canceled';
export type NoteType = 'info' | 'warn' | 'error';

export interface Note {
  type: NoteType;
  text: string;
}

const ACTIONS: ReadonlySet<string> = new Set<AdhocAction>(['execute', 'cancel', 'prev', 'next', 'complete']);

/** The command-specific error conditions of §4.4, each sent next to its general condition. */
export type AdhocCondition = 'malformed-action' | 'bad-action' | 'bad-locale' | 'bad-payload' | 'bad-sessionid' | 'session-expired';

/** An error to send back: the stanza error type and condition, and the XEP-0050 child when there is one. */
export interface AdhocError {
  type: StanzaErrorType;
  condition: StanzaErrorCondition;
  specific?: AdhocCondition;
  text?: string;
}

const SPECIFIC: Record<AdhocCondition, Pick<AdhocError, 'type' | 'condition'>> = {
  'malformed-action': { type: 'modify', condition: 'bad-request' },
  'bad-action': { type: 'modify', condition: 'bad-request' },
  'bad-locale': { type: 'modify', condition: 'bad-request' },
  'bad-payload': { type: 'modify', condition: 'bad-request' },
  'bad-sessionid': { type: 'modify', condition: 'bad-request' },
  'session-expired': { type: 'cancel', condition: 'not-allowed' },
};

/** The §4.4 error for a command-specific condition, with its general condition and type. */
export function adhocError(specific: AdhocCondition, text?: string): AdhocError {
  return { ...SPECIFIC[specific], specific, ...(text ? { text } : {}) };
}

/** Thrown by a command's `run` (or a stage's `validate`) to answer with an error instead of a result. */
export class CommandError extends Error {
  constructor(readonly error: AdhocError) {
    super(error.text ?? error.specific ?? error.condition);
    this.name = 'CommandError';
  }
}

/** What form code and `run` see about the request and what was given so far. */
export interface CommandContext {
  /** The requester's full JID, as stamped by the router. */
  requester: string;
  /** The JID commands are offered at (the host, or a component). */
  responder: string;
  node: string;
  sessionid: string;
  /** The session's language (the first one the requester gave, or the fallback). */
  lang: string;
  /** Values submitted at each stage so far, by stage index. */
  stages: readonly ReadonlyMap<string, readonly string[]>[];
  /** All submitted values merged, later stages winning. */
  values: ReadonlyMap<string, readonly string[]>;
}

export interface CommandStage {
  /** The form of this stage; a function when it depends on earlier answers (stage 2 for the service chosen in stage 1). */
  form: FormSpec | ((ctx: CommandContext) => FormSpec | Promise<FormSpec>);
  /** Checks beyond the form spec (password equals password-verify, …): return what is wrong, answered with bad-payload. */
  validate?: (values: ReadonlyMap<string, readonly string[]>, ctx: CommandContext) => string | undefined | Promise<string | undefined>;
  /** Allow `complete` here although later stages exist (their forms are then skipped). */
  completeEarly?: boolean;
}

/** What a completed command returns (§3.5: payload elements in precedence order; §3.6: notes). */
export interface CommandOutcome {
  notes?: readonly Note[];
  /** Result forms, XEP-0066 URLs or any other payload, in precedence order. */
  payload?: readonly Element[];
}

export interface CommandDefinition {
  node: string;
  /** The label in disco#items and the command node's identity. */
  name: string;
  /** Who may list and run the command (XEP-0050 §5 leaves rights to the implementation); checked at every step. */
  allowed: (requester: string) => boolean | Promise<boolean>;
  /** Zero stages: the command completes on `execute` without a form. */
  stages: readonly CommandStage[];
  /** Runs once, when the last stage (or a `completeEarly` one) is completed; throw CommandError for an error reply. */
  run: (ctx: CommandContext) => CommandOutcome | Promise<CommandOutcome>;
}

/** One `<command/>` request, as the glue read it from an iq of type set. */
export interface CommandRequest {
  /** Full JID of the requester ('from', stamped by the router). */
  from: string;
  /** The JID the iq was addressed to (the responder). */
  to: string;
  /** xml:lang of the iq (or the stream's default), if any. */
  lang?: string;
  command: Element;
}

export type CommandResult =
  | { ok: true; payload: Element; status: AdhocStatus }
  /** `cause` is set when command code threw something other than a CommandError: log it. */
  | { ok: false; error: AdhocError; cause?: unknown };

export interface AdhocEngineOptions {
  /** Milliseconds of inactivity after which a session expires (default 10 minutes). */
  sessionTtlMs?: number;
  /** Open sessions per requester (full JID) before `not-allowed` (default 8). */
  maxSessionsPerRequester?: number;
  /** Open sessions in total before `resource-constraint` (default 1000). */
  maxSessions?: number;
  /** Languages the commands' texts exist in (default ['en']). */
  locales?: readonly string[];
  /**
   * The language used when the requester's is not among `locales` (default 'en'). `null` refuses
   * such requests with bad-locale instead; the default keeps clients that send their UI language
   * (Gajim, Conversations) working with English texts.
   */
  fallbackLocale?: string | null;
  /** Clock, for expiry (default Date.now). */
  now?: () => number;
  /** Session id generator (default 16 random bytes, base64url). */
  newSessionId?: () => string;
  /** JID preparation for checking jid-single / jid-multi fields (default core/util/jid.ts `prep`). */
  prepJid?: (jid: string) => string | null;
}

interface Session {
  id: string;
  node: string;
  requester: string;
  lang: string;
  stage: number;
  /** Values submitted per stage; kept when going back so `prev` shows them again. */
  stages: Map<string, string[]>[];
  touched: number;
  busy: boolean;
}

/** Ended sessions are remembered this long (bounded) so a late request gets session-expired, not bad-sessionid. */
const ENDED_MEMORY = 1024;

export class AdhocEngine {
  private readonly commands = new Map<string, CommandDefinition>();
  private readonly sessions = new Map<string, Session>();
  /** sessionid → when it ended (completed, canceled, expired); insertion-ordered for bounding. */
  private readonly ended = new Map<string, number>();
  private readonly ttl: number;
  private readonly perRequester: number;
  private readonly maxSessions: number;
  private readonly locales: readonly string[];
  private readonly fallbackLocale: string | null;
  private readonly now: () => number;
  private readonly newId: () => string;
  private readonly prepJid: (jid: string) => string | null;

  constructor(opts: AdhocEngineOptions = {}) {
    this.ttl = opts.sessionTtlMs ?? 10 * 60_000;
    this.perRequester = opts.maxSessionsPerRequester ?? 8;
    this.maxSessions = opts.maxSessions ?? 1000;
    this.locales = (opts.locales ?? ['en']).map((l) => l.toLowerCase());
    this.fallbackLocale = opts.fallbackLocale === undefined ? 'en' : opts.fallbackLocale;
    this.now = opts.now ?? Date.now;
    this.newId = opts.newSessionId ?? (() => randomBytes(16).toString('base64url'));
    this.prepJid = opts.prepJid ?? prep;
  }

  // ---- registry ---------------------------------------------------------------------------------

  /** Add a command; its node must be unique for this responder (§3.2). Returns a function removing it. */
  register(def: CommandDefinition): () => void {
    if (!def.node) throw new CoreError('MODULE_INVALID', 'an ad-hoc command needs a node');
    if (this.commands.has(def.node)) throw new CoreError('MODULE_INVALID', `ad-hoc command node '${def.node}' is already registered`);
    this.commands.set(def.node, def);
    return () => this.unregister(def.node);
  }

  /** Remove a command and end its open sessions (a later request on them gets session-expired). */
  unregister(node: string): void {
    this.commands.delete(node);
    for (const s of [...this.sessions.values()]) if (s.node === node) this.end(s);
  }

  get(node: string): CommandDefinition | undefined {
    return this.commands.get(node);
  }

  /** Number of open sessions (for tests and the admin shell). */
  get openSessions(): number {
    return this.sessions.size;
  }

  // ---- service discovery (§2.2) ------------------------------------------------------------------

  /** The commands `requester` may run, in registration order ("not required to send the same list to all requesters"). */
  async listFor(requester: string): Promise<CommandDefinition[]> {
    const out: CommandDefinition[] = [];
    for (const def of this.commands.values()) if (await allowedSafely(def, requester)) out.push(def);
    return out;
  }

  /** The disco#items `<query/>` for the node http://jabber.org/protocol/commands. */
  async discoItems(requester: string, responder: string): Promise<Element> {
    const q = new Element('query', { xmlns: NS.discoItems, node: NS_COMMANDS });
    for (const def of await this.listFor(requester)) q.c('item', { jid: responder, node: def.node, name: def.name });
    return q;
  }

  /**
   * The disco#info `<query/>` for a command node (identity automation/command-node, features
   * commands and jabber:x:data), or for the command-list node itself. forbidden when the
   * requester may not run it, item-not-found when no such node; undefined for any other node
   * (not the engine's: the glue answers as it would without commands).
   */
  async discoInfo(node: string, requester: string): Promise<{ ok: true; query: Element } | { ok: false; error: AdhocError } | undefined> {
    if (node === NS_COMMANDS) {
      const q = new Element('query', { xmlns: NS.discoInfo, node });
      q.c('identity', { category: 'automation', type: 'command-list', name: 'Commands' });
      q.c('feature', { var: NS_COMMANDS });
      return { ok: true, query: q };
    }
    const def = this.commands.get(node);
    if (!def) return undefined;
    if (!(await allowedSafely(def, requester))) return { ok: false, error: { type: 'cancel', condition: 'forbidden' } };
    const q = new Element('query', { xmlns: NS.discoInfo, node });
    q.c('identity', { category: 'automation', type: 'command-node', name: def.name });
    q.c('feature', { var: NS_COMMANDS });
    q.c('feature', { var: NS_DATA });
    return { ok: true, query: q };
  }

  // ---- execution (§2.4, §3) -----------------------------------------------------------------------

  /** Handle one `<command/>`: start, advance, go back, complete or cancel a session. */
  async handle(req: CommandRequest): Promise<CommandResult> {
    this.sweep();
    const cmd = req.command;
    if (cmd.getName() !== 'command' || cmd.getNS() !== NS_COMMANDS) return fail({ type: 'modify', condition: 'bad-request', text: 'Expected a command element' });
    const attrs = cmd.attrs as Record<string, string | undefined>;
    const node = attrs.node;
    if (!node) return fail({ type: 'modify', condition: 'bad-request', text: 'The command has no node' });
    const rawAction = attrs.action ?? 'execute';
    if (!ACTIONS.has(rawAction)) return fail(adhocError('malformed-action', `Unknown action '${rawAction}'`));
    const action = rawAction as AdhocAction;
    const def = this.commands.get(node);
    if (!def) return fail({ type: 'cancel', condition: 'item-not-found', text: `No command '${node}'` });
    if (!(await allowedSafely(def, req.from))) return fail({ type: 'cancel', condition: 'forbidden' });

    const sessionid = attrs.sessionid;
    if (sessionid === undefined) {
      if (action !== 'execute') return fail(adhocError('bad-sessionid', `Action '${action}' needs a sessionid`));
      return this.start(def, req, attrs['xml:lang'] ?? req.lang);
    }
    const s = this.sessions.get(sessionid);
    if (!s) {
      if (sessionid !== '' && this.ended.has(sessionid)) return fail(adhocError('session-expired'));
      return fail(adhocError('bad-sessionid'));
    }
    // A session is valid between one requester and responder only (§3.3); another JID, or another
    // node, learns nothing about it.
    if (s.requester !== req.from || s.node !== node) return fail(adhocError('bad-sessionid'));
    if (s.busy) return fail({ type: 'wait', condition: 'unexpected-request', text: 'The previous step of this session is still running' });
    s.busy = true;
    try {
      s.touched = this.now();
      return await this.step(def, s, action, req);
    } finally {
      s.busy = false;
    }
  }

  /** Drop sessions idle longer than the TTL; they answer session-expired afterwards. */
  sweep(): void {
    const limit = this.now() - this.ttl;
    for (const s of [...this.sessions.values()]) if (s.touched <= limit && !s.busy) this.end(s);
  }

  private async start(def: CommandDefinition, req: CommandRequest, lang: string | undefined): Promise<CommandResult> {
    const locale = this.pickLocale(lang);
    if (locale === undefined) return fail(adhocError('bad-locale', `Language '${lang}' is not available`));
    if (this.sessions.size >= this.maxSessions) return fail({ type: 'wait', condition: 'resource-constraint', text: 'Too many command sessions' });
    let mine = 0;
    for (const s of this.sessions.values()) if (s.requester === req.from) mine++;
    if (mine >= this.perRequester) return fail({ type: 'cancel', condition: 'not-allowed', text: 'Too many open command sessions; complete or cancel one' });
    let id = this.newId();
    while (this.sessions.has(id) || this.ended.has(id) || id === '') id = this.newId();
    const s: Session = { id, node: def.node, requester: req.from, lang: locale, stage: 0, stages: [], touched: this.now(), busy: true };
    this.sessions.set(id, s);
    try {
      if (def.stages.length === 0) return await this.complete(def, s, req);
      return await this.render(def, s, req);
    } finally {
      s.busy = false;
    }
  }

  private async step(def: CommandDefinition, s: Session, action: AdhocAction, req: CommandRequest): Promise<CommandResult> {
    if (action === 'cancel') {
      this.end(s);
      return { ok: true, status: 'canceled', payload: commandElement(s, 'canceled') };
    }
    const allowed = this.allowedActions(def, s.stage);
    const effective: StageAction = action === 'execute' ? allowed.execute : action;
    if (!allowed.actions.includes(effective)) return fail(adhocError('bad-action', `Action '${action}' is not allowed at this stage`));

    if (effective === 'prev') {
      s.stage -= 1;
      return this.render(def, s, req);
    }
    const submitted = submittedForm(req.command);
    if (submitted === 'invalid') return fail(adhocError('bad-payload', 'The command carries a data form that is not a submission'));
    const stage = def.stages[s.stage];
    // A session's stage exists (unregister ends the command's sessions); should it not, the
    // session ends with internal-server-error rather than the engine throwing.
    if (stage === undefined) return this.failed(def, s, new RangeError(`Command '${def.node}' has no stage ${s.stage}`));
    const ctx = this.context(def, s, req, s.stage);
    let spec: FormSpec;
    try {
      spec = await stageForm(stage, ctx);
    } catch (err) {
      return this.failed(def, s, err);
    }
    const read = readSubmission(submitted ?? emptySubmission(), spec, { isJid: (j) => this.prepJid(j) !== null });
    if (!read.ok) return fail(adhocError('bad-payload', read.text));
    const values = read.values;
    if (stage.validate) {
      const withThis = [...ctx.stages, values];
      let problem: string | undefined;
      try {
        problem = await stage.validate(values, { ...ctx, stages: withThis, values: merge(withThis) });
      } catch (err) {
        return this.failed(def, s, err);
      }
      if (problem) return fail(adhocError('bad-payload', problem));
    }
    // Answers to later stages are kept, to prefill their forms again; run() only sees the stages
    // up to the one completed.
    s.stages[s.stage] = values;
    if (effective === 'next') {
      s.stage += 1;
      return this.render(def, s, req);
    }
    return this.complete(def, s, req);
  }

  private async render(def: CommandDefinition, s: Session, req: CommandRequest): Promise<CommandResult> {
    const stage = def.stages[s.stage];
    if (stage === undefined) return this.failed(def, s, new RangeError(`Command '${def.node}' has no stage ${s.stage}`));
    let spec: FormSpec;
    try {
      spec = await stageForm(stage, this.context(def, s, req, s.stage));
    } catch (err) {
      return this.failed(def, s, err);
    }
    const given = s.stages[s.stage];
    const payload = commandElement(s, 'executing');
    const allowed = this.allowedActions(def, s.stage);
    const actions = payload.c('actions', { execute: allowed.execute });
    for (const a of allowed.actions) actions.c(a);
    payload.cnode(form(given ? prefill(spec, given) : spec));
    return { ok: true, status: 'executing', payload };
  }

  private async complete(def: CommandDefinition, s: Session, req: CommandRequest): Promise<CommandResult> {
    let outcome: CommandOutcome;
    try {
      outcome = await def.run(this.context(def, s, req, s.stage + 1));
    } catch (err) {
      return this.failed(def, s, err);
    }
    this.end(s);
    const payload = commandElement(s, 'completed');
    for (const n of outcome.notes ?? []) payload.c('note', { type: n.type }).t(n.text);
    for (const p of outcome.payload ?? []) payload.cnode(p);
    return { ok: true, status: 'completed', payload };
  }

  /**
   * An error from form code, validate or run. A `modify` error keeps a session that has a form,
   * so the requester can correct its answer and submit again; anything else ends it. Unexpected
   * exceptions become internal-server-error (the glue logs `cause`).
   */
  private failed(def: CommandDefinition, s: Session, err: unknown): CommandResult {
    if (err instanceof CommandError) {
      if (err.error.type !== 'modify' || def.stages.length === 0) this.end(s);
      return fail(err.error);
    }
    this.end(s);
    return { ok: false, error: { type: 'cancel', condition: 'internal-server-error' }, cause: err };
  }

  /**
   * Actions a stage offers (§3.4): prev after the first stage, next before the last, complete on
   * the last (or a completeEarly stage). The execute attribute is always given and always one of
   * them — next while there is a next stage, else complete — as 1.3.0 makes a missing attribute
   * mean next.
   */
  allowedActions(def: CommandDefinition, stage: number): { execute: StageAction; actions: StageAction[] } {
    const last = stage >= def.stages.length - 1;
    const actions: StageAction[] = [];
    if (stage > 0) actions.push('prev');
    if (!last) actions.push('next');
    if (last || def.stages[stage]?.completeEarly) actions.push('complete');
    return { execute: last ? 'complete' : 'next', actions };
  }

  /** The context with the answers of the first `upto` stages. */
  private context(def: CommandDefinition, s: Session, req: CommandRequest, upto: number): CommandContext {
    const stages = s.stages.slice(0, upto);
    return { requester: s.requester, responder: req.to, node: def.node, sessionid: s.id, lang: s.lang, stages, values: merge(stages) };
  }

  /** §3.7: the first language given applies to the whole session; unknown ones fall back or fail. */
  private pickLocale(lang: string | undefined): string | undefined {
    if (!lang) return this.fallbackLocale ?? this.locales[0] ?? 'en';
    const wanted = lang.toLowerCase();
    const exact = this.locales.find((l) => l === wanted);
    if (exact) return exact;
    const primary = wanted.split('-')[0];
    const near = this.locales.find((l) => l.split('-')[0] === primary);
    if (near) return near;
    return this.fallbackLocale ?? undefined;
  }

  private end(s: Session): void {
    this.sessions.delete(s.id);
    this.ended.set(s.id, this.now());
    while (this.ended.size > ENDED_MEMORY) this.ended.delete(this.ended.keys().next().value as string);
  }
}

// ---- building replies --------------------------------------------------------------------------

function commandElement(s: Session, status: AdhocStatus): Element {
  return new Element('command', { xmlns: NS_COMMANDS, node: s.node, sessionid: s.id, status, 'xml:lang': s.lang });
}

/**
 * The iq error reply for a failed request: the original `<command/>` echoed (as in §3.7's
 * example), then `<error>` with the general condition, the text, and the command-specific
 * condition in the commands namespace.
 */
export function adhocErrorReply(iq: Element, error: AdhocError): Element {
  const r = reply(iq, 'error');
  const cmd = iq.getChild('command', NS_COMMANDS);
  if (cmd) {
    const echo = new Element('command', { ...(cmd.attrs as Record<string, string>) });
    r.cnode(echo);
  }
  const err = r.c('error', { type: error.type });
  err.c(error.condition, { xmlns: NS.stanzas });
  if (error.text) err.c('text', { xmlns: NS.stanzas, 'xml:lang': 'en' }).t(error.text);
  if (error.specific) err.c(error.specific, { xmlns: NS_COMMANDS });
  return r;
}

/** The iq result carrying a command reply payload. */
export function adhocResultReply(iq: Element, payload: Element): Element {
  const r = reply(iq, 'result');
  r.cnode(payload);
  return r;
}

// ---- helpers -----------------------------------------------------------------------------------

function fail(error: AdhocError): CommandResult {
  return { ok: false, error };
}

async function allowedSafely(def: CommandDefinition, requester: string): Promise<boolean> {
  try {
    return (await def.allowed(requester)) === true;
  } catch {
    return false; // a failing rights check never grants
  }
}

async function stageForm(stage: CommandStage, ctx: CommandContext): Promise<FormSpec> {
  return typeof stage.form === 'function' ? stage.form(ctx) : stage.form;
}

/**
 * The requester's data form, if any: type submit, or cancel read as submit (§3.5.1 "Responders
 * SHOULD consider any <x type='cancel'/> to be <x type='submit'/>"); 'invalid' for a form or result.
 */
function submittedForm(cmd: Element): ParsedForm | undefined | 'invalid' {
  const x = cmd.getChild('x', NS_DATA);
  if (!x) return undefined;
  const parsed = parseForm(x);
  if (!parsed) return 'invalid';
  if (parsed.type === 'cancel') return { ...parsed, type: 'submit' };
  if (parsed.type !== 'submit') return 'invalid';
  return parsed;
}

function emptySubmission(): ParsedForm {
  return { type: 'submit', formType: undefined, title: undefined, instructions: [], fields: new Map(), reported: undefined, items: [] };
}

/** The stage's form with the values the requester gave before (never echoing text-private ones). */
function prefill(spec: FormSpec, given: ReadonlyMap<string, readonly string[]>): FormSpec {
  return {
    ...spec,
    fields: spec.fields.map((f) => {
      const v = given.get(f.var);
      if (!v || f.type === 'text-private' || f.type === 'fixed') return f;
      return { ...f, values: v };
    }),
  };
}

function merge(stages: readonly ReadonlyMap<string, readonly string[]>[]): Map<string, readonly string[]> {
  const all = new Map<string, readonly string[]>();
  for (const st of stages) for (const [k, v] of st ?? []) all.set(k, v);
  return all;
}
