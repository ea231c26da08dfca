//% requires_core_features: sessions-v1, stanza-events-v1, user-deleted-event, module-capabilities
// In-Band Registration (XEP-0077), for client accounts of this host:
//  - before authentication (allowRegistration, and only on an encrypted stream when
//    c2sRequireEncryption): the stream feature, and registration get/set on the unauthenticated
//    stream (mod_c2s hands such stanzas to `unauthenticated-stanza/iq`); at most one account per
//    stream and one per IP address per `registrationThrottle` seconds;
//  - once authenticated (whatever allowRegistration says): the registration get (<registered/>),
//    password change and account removal (<remove/>: result, the stream is closed with
//    not-authorized, then the account is deleted — `user-deleted` lets every module clean up).
// When an account is deleted by any means, every remaining session of it is closed.
// Error replies never echo the request: it may carry a password (XEP-0077 §3.3).
import { Element } from '@xmpp/xml';
import { CoreError, defineModule, errorReply, iqPayload, iqResult, isBound, nodeprep, prep, saslPrep, type BoundSession, type ModuleApi, type Session, type StanzaErrorCondition, type StanzaErrorType, type StanzaEvent } from '../core/api.ts';

const NS_REGISTER = 'jabber:iq:register';
const NS_FEATURE = 'http://jabber.org/features/iq-register';

const options = {
  allowRegistration: {
    type: 'boolean',
    description: 'Let unauthenticated clients create accounts in-band (password change and removal work regardless)',
    default: false,
  },
  minPasswordLength: { type: 'integer', description: 'Shortest accepted password, in characters', default: 8, min: 1 },
  registrationThrottle: {
    type: 'integer',
    description: 'Seconds during which an IP address may register only one account (0: no limit)',
    default: 60,
    min: 0,
  },
  instructions: {
    type: 'string',
    description: 'Instructions sent with the registration fields',
    default: 'Choose a username and password to register with this server.',
  },
} as const;

type Options = typeof options;

interface StreamState {
  /** An account was registered (or is being registered) on this stream. */
  registered: boolean;
}

/** The error reply for an iq without its payload (which may carry a password). */
function fail(origin: Session, stanza: Element, type: StanzaErrorType, condition: StanzaErrorCondition, text?: string): void {
  const bare = new Element(stanza.name, { ...(stanza.attrs as Record<string, string>) });
  origin.send(errorReply(bare, type, condition, text));
}

/** The text of a child element, or undefined when absent. */
function childText(query: Element, name: string): string | undefined {
  const el = query.getChild(name);
  return el ? el.getText() : undefined;
}


/** Why a password is refused, or undefined when acceptable. */
function passwordProblem(password: string, minLength: number): string | undefined {
  if ([...password].length < minLength) return `The password must have at least ${minLength} characters`;
  try {
    if (saslPrep(password) === '') return 'The password is empty';
  } catch {
    return 'The password contains characters that are not allowed';
  }
  return undefined;
}

export default defineModule({
  description: 'In-Band Registration (XEP-0077): account creation, password change and removal',
  capabilities: ['users'],
  options,
  load(module: ModuleApi<Options>) {
    const host = module.host;
    const streams = (session: Session) => module.state<StreamState>(session, () => ({ registered: false }));
    /** IP address → time (ms) of its last registration. */
    const lastByIp = new Map<string, number>();

    const secureEnough = (session: Session) => session.conn?.secure === true || !module.config('c2sRequireEncryption');
    const registrationOpen = (session: Session) => module.option('allowRegistration') && secureEnough(session);

    module.addFeature(NS_REGISTER);

    module.hook('stream-features', ({ origin, features }) => {
      if (origin.type === 'c2s_unauthed' && registrationOpen(origin)) features.c('register', { xmlns: NS_FEATURE });
    });

    // -- registration on an unauthenticated stream ---------------------------------------------

    const fields = () => {
      const query = new Element('query', { xmlns: NS_REGISTER });
      query.c('instructions').t(module.option('instructions'));
      query.c('username');
      query.c('password');
      return query;
    };

    /** Reserve the IP's registration slot; returns a function that releases it, or the seconds to wait. */
    const throttle = (ip: string | undefined): { release: () => void } | { wait: number } => {
      const windowMs = module.option('registrationThrottle') * 1000;
      if (windowMs <= 0 || ip === undefined) return { release: () => undefined };
      const now = Date.now();
      const last = lastByIp.get(ip);
      if (last !== undefined && now - last < windowMs) return { wait: Math.ceil((windowMs - (now - last)) / 1000) };
      if (lastByIp.size >= 10_000) {
        for (const [k, t] of lastByIp) if (now - t >= windowMs) lastByIp.delete(k);
      }
      lastByIp.set(ip, now);
      return {
        release: () => {
          if (lastByIp.get(ip) !== now) return;
          if (last === undefined) lastByIp.delete(ip);
          else lastByIp.set(ip, last);
        },
      };
    };

    const register = async (origin: Session, stanza: Element, query: Element): Promise<void> => {
      const state = streams(origin);
      if (query.getChild('remove')) {
        fail(origin, stanza, 'cancel', 'unexpected-request', 'Authenticate to remove an account');
        return;
      }
      if (state.registered) {
        fail(origin, stanza, 'cancel', 'not-acceptable', 'An account was already registered on this stream; authenticate with it');
        return;
      }
      const username = childText(query, 'username');
      const password = childText(query, 'password');
      if (!username || !password) {
        fail(origin, stanza, 'modify', 'not-acceptable', 'Both a username and a password are required');
        return;
      }
      const node = nodeprep(username);
      if (node === null) {
        fail(origin, stanza, 'modify', 'jid-malformed', 'The username is not a valid JID localpart');
        return;
      }
      const problem = passwordProblem(password, module.option('minPasswordLength'));
      if (problem) {
        fail(origin, stanza, 'modify', 'not-acceptable', problem);
        return;
      }
      const slot = throttle(origin.conn?.ip);
      if ('wait' in slot) {
        module.log.warn('registration of %s@%s from %s refused: throttled', node, host, origin.conn?.ip);
        fail(origin, stanza, 'wait', 'policy-violation', `Too many registrations from your address; try again in ${slot.wait} s`);
        return;
      }
      state.registered = true;
      try {
        await module.privileged.users.create(host, node, password);
      } catch (err) {
        state.registered = false;
        slot.release();
        if (err instanceof CoreError && err.code === 'USER_EXISTS') {
          fail(origin, stanza, 'cancel', 'conflict', 'That username is taken');
        } else if (err instanceof CoreError && err.code === 'JID_INVALID') {
          fail(origin, stanza, 'modify', 'jid-malformed', 'The username is not a valid JID localpart');
        } else {
          module.log.error('registration of %s@%s failed: %s', node, host, err);
          fail(origin, stanza, 'wait', 'internal-server-error', 'The account could not be created');
        }
        return;
      }
      module.log.info('registered account %s@%s from %s', node, host, origin.conn?.ip);
      origin.send(iqResult(stanza));
    };

    module.hook('unauthenticated-stanza/iq', ({ origin, stanza }) => {
      const attrs = stanza.attrs;
      const query = iqPayload(stanza);
      if (!query || query.name !== 'query' || query.attrs.xmlns !== NS_REGISTER) return undefined;
      if (attrs.to !== undefined && prep(attrs.to) !== host) return undefined;
      if (attrs.type !== 'get' && attrs.type !== 'set') return undefined;
      delete attrs.from; // the client has no address yet: replies carry no 'to'
      if (!module.option('allowRegistration')) {
        fail(origin, stanza, 'cancel', 'service-unavailable', 'In-band registration is disabled');
        return true;
      }
      if (!secureEnough(origin)) {
        fail(origin, stanza, 'modify', 'not-authorized', 'Use STARTTLS before registering');
        return true;
      }
      if (attrs.type === 'get') {
        origin.send(iqResult(stanza, fields()));
        return true;
      }
      // Answered here, not by the router: its error replies echo the request (a password).
      register(origin, stanza, query).catch((err: unknown) => {
        module.log.error('registration failed: %s', err);
        fail(origin, stanza, 'wait', 'internal-server-error');
      });
      return true;
    });

    // -- authenticated users: registration info, password change, removal ---------------------

    /** Only the host's own authenticated users manage their account here. */
    const ownUser = (origin: Session): origin is BoundSession => isBound(origin) && origin.host === host;

    const info = ({ origin, stanza }: StanzaEvent): unknown => {
      if (!ownUser(origin)) return undefined;
      const query = new Element('query', { xmlns: NS_REGISTER });
      query.c('registered');
      query.c('instructions').t('You are registered. Send a new password to change it, or <remove/> to delete your account.');
      query.c('username').t(origin.username);
      query.c('password');
      origin.send(iqResult(stanza, query));
      return true;
    };
    module.hook(`iq-get/self/${NS_REGISTER}:query`, info);
    module.hook(`iq-get/host/${NS_REGISTER}:query`, info);

    const remove = async (origin: Session & { username: string }, stanza: Element): Promise<void> => {
      const username = origin.username;
      module.log.info('account %s@%s removed by its owner from %s', username, host, origin.conn?.ip);
      origin.send(iqResult(stanza));
      // XEP-0077 §3.2: the stream ends with not-authorized; deleting the account closes the others.
      origin.close({ condition: 'not-authorized', text: 'Account removed' });
      try {
        await module.privileged.users.delete(host, username);
      } catch (err) {
        if (!(err instanceof CoreError && err.code === 'USER_NOT_FOUND')) throw err;
      }
    };

    const changePassword = async (origin: Session & { username: string }, stanza: Element, query: Element): Promise<void> => {
      const username = childText(query, 'username');
      if (username !== undefined && username !== '' && nodeprep(username) !== origin.username) {
        fail(origin, stanza, 'auth', 'forbidden', 'You can only change your own password');
        return;
      }
      const password = childText(query, 'password');
      if (password === undefined) {
        fail(origin, stanza, 'modify', 'bad-request', 'The new password is missing');
        return;
      }
      if (password === '') {
        fail(origin, stanza, 'modify', 'not-acceptable', 'The password cannot be empty; it was not changed');
        return;
      }
      if (!secureEnough(origin)) {
        fail(origin, stanza, 'modify', 'not-authorized', 'Passwords are only changed over an encrypted stream');
        return;
      }
      const problem = passwordProblem(password, module.option('minPasswordLength'));
      if (problem) {
        fail(origin, stanza, 'modify', 'not-acceptable', problem);
        return;
      }
      await module.privileged.users.setPassword(host, origin.username, password);
      origin.send(iqResult(stanza));
    };

    const set = ({ origin, stanza }: StanzaEvent): unknown => {
      if (!ownUser(origin)) return undefined;
      const query = iqPayload(stanza)!;
      const children = query.getChildElements();
      let work: Promise<void>;
      if (query.getChild('remove')) {
        if (children.length !== 1) {
          fail(origin, stanza, 'modify', 'bad-request', '<remove/> must be the only child of <query/>');
          return true;
        }
        work = remove(origin, stanza);
      } else if (query.getChild('password') || query.getChild('username')) {
        work = changePassword(origin, stanza, query);
      } else {
        fail(origin, stanza, 'modify', 'bad-request', 'Expected <password/> or <remove/>');
        return true;
      }
      // The session's next stanzas wait for the change. Failures are answered here, not by the
      // router: its error replies echo the request, which may carry a password.
      return work.then(() => true, (err: unknown) => {
        module.log.error('account operation of %s@%s failed: %s', origin.username, host, err);
        fail(origin, stanza, 'wait', 'internal-server-error');
        return true;
      });
    };
    module.hook(`iq-set/self/${NS_REGISTER}:query`, set);
    module.hook(`iq-set/host/${NS_REGISTER}:query`, set);
  },
});
