// Hosts served by this server: virtual hosts (user accounts) and components. Each has its own
// event bus, its local pseudo-session (origin of server-generated stanzas) and its modules.
import type { Element } from '@xmpp/xml';
import type { HostEntry } from './config.ts';
import { EventBus } from './util/events.ts';
import type { HostEvents } from './event-types.ts';
import { Session } from './session.ts';

export type HostKind = 'virtualhost' | 'component';

/** A registered item (disco feature, identity, …) and the module that added it. */
export interface HostItem {
  module: string;
  value: unknown;
}

export class Host {
  readonly events: EventBus<HostEvents>;
  /** Origin of stanzas the server itself sends from this host. */
  readonly session: Session;
  /** Items added by modules, by key ('feature', 'identity', 'extension', …). */
  readonly items = new Map<string, HostItem[]>();

  constructor(readonly name: string, readonly kind: HostKind, route: (origin: Session, stanza: Element) => void) {
    this.events = new EventBus<HostEvents>(name);
    const session: Session = new Session('local', undefined, {
      send: (x) => {
        if (typeof x !== 'string') route(session, x);
        return true;
      },
      close: () => undefined,
    });
    session.host = name;
    session.full_jid = name;
    session.notopen = false;
    this.session = session;
  }

  addItem(key: string, module: string, value: unknown): void {
    const list = this.items.get(key) ?? [];
    list.push({ module, value });
    this.items.set(key, list);
    this.events.emit(`item-added/${key}`, { key, module, value });
  }

  removeItem(key: string, module: string, value: unknown): void {
    const list = this.items.get(key);
    if (!list) return;
    const i = list.findIndex((it) => it.module === module && it.value === value);
    if (i >= 0) {
      list.splice(i, 1);
      this.events.emit(`item-removed/${key}`, { key, module, value });
    }
  }

  getItems<T = unknown>(key: string): T[] {
    return (this.items.get(key) ?? []).map((i) => i.value as T);
  }
}

export class HostManager {
  private readonly hosts = new Map<string, Host>();

  constructor(private readonly route: (origin: Session, stanza: Element) => void) {}

  activate(entry: HostEntry): Host {
    const host = new Host(entry.name, entry.kind, this.route);
    this.hosts.set(entry.name, host);
    return host;
  }

  get(name: string): Host | undefined {
    return this.hosts.get(name);
  }

  has(name: string): boolean {
    return this.hosts.has(name);
  }

  names(): string[] {
    return [...this.hosts.keys()];
  }

  all(): Host[] {
    return [...this.hosts.values()];
  }
}
