// The three kinds of error (doc/errors.md): protocol errors sent to peers (StanzaError,
// StreamError), expected failures returned as values, and bugs/misconfiguration thrown as
// CoreError with a stable code.

import type { Element } from '@xmpp/xml';

export type StanzaErrorType = 'auth' | 'cancel' | 'continue' | 'modify' | 'wait';

/** RFC 6120 §8.3.3 defined conditions. */
export type StanzaErrorCondition =
  | 'bad-request' | 'conflict' | 'feature-not-implemented' | 'forbidden' | 'gone'
  | 'internal-server-error' | 'item-not-found' | 'jid-malformed' | 'not-acceptable'
  | 'not-allowed' | 'not-authorized' | 'policy-violation' | 'recipient-unavailable'
  | 'redirect' | 'registration-required' | 'remote-server-not-found'
  | 'remote-server-timeout' | 'resource-constraint' | 'service-unavailable'
  | 'subscription-required' | 'undefined-condition' | 'unexpected-request';

/** RFC 6120 §4.9.3 defined stream error conditions. */
export type StreamErrorCondition =
  | 'bad-format' | 'bad-namespace-prefix' | 'conflict' | 'connection-timeout' | 'host-gone'
  | 'host-unknown' | 'improper-addressing' | 'internal-server-error' | 'invalid-from'
  | 'invalid-namespace' | 'invalid-xml' | 'not-authorized' | 'not-well-formed'
  | 'policy-violation' | 'remote-connection-failed' | 'reset' | 'resource-constraint'
  | 'restricted-xml' | 'see-other-host' | 'system-shutdown' | 'undefined-condition'
  | 'unsupported-encoding' | 'unsupported-feature' | 'unsupported-stanza-type'
  | 'unsupported-version';

/**
 * What an error reply may carry beyond type, condition and text (RFC 6120 §8.3.2): an
 * application-specific condition element (XEP-0060's `<precondition-not-met/>`, XEP-0363's
 * `<file-too-large/>`, …) and the character data some conditions hold (`<gone>` and `<redirect>`:
 * the new address).
 */
export interface StanzaErrorExtra {
  /** An element in an application namespace, added after the defined condition. */
  application?: Element;
  /** Character data of the defined condition element (gone, redirect). */
  conditionText?: string;
}

export class StanzaError extends Error {
  constructor(
    readonly type: StanzaErrorType,
    readonly condition: StanzaErrorCondition,
    readonly text?: string,
    readonly extra?: StanzaErrorExtra,
  ) {
    super(text ?? condition);
    this.name = 'StanzaError';
  }
}

export class StreamError extends Error {
  constructor(readonly condition: StreamErrorCondition, readonly text?: string) {
    super(text ?? condition);
    this.name = 'StreamError';
  }
}

/** Codes of CoreError; each is described in doc/errors.md. */
export type CoreErrorCode =
  | 'CONFIG_INVALID' | 'CONFIG_NOT_FOUND'
  | 'MODULE_NOT_FOUND' | 'MODULE_FILTERED' | 'MODULE_SKIPPED' | 'MODULE_LOAD_FAILED' | 'MODULE_ALREADY_LOADED'
  | 'MODULE_NOT_LOADED' | 'MODULE_NAME_RESERVED' | 'MODULE_INVALID' | 'MODULE_OPTION_INVALID'
  | 'MODULE_DEPENDENCY' | 'HOST_UNKNOWN' | 'USER_EXISTS' | 'USER_NOT_FOUND' | 'CREDENTIALS_INVALID' | 'JID_INVALID'
  | 'LISTEN_FAILED' | 'TLS_FAILED' | 'METHOD_NOT_FOUND' | 'MODULE_CAPABILITY_MISSING'
  | 'SERVER_NOT_RUNNING';

export class CoreError extends Error {
  constructor(readonly code: CoreErrorCode, message: string) {
    super(message);
    this.name = 'CoreError';
  }
}
