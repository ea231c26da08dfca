// Cadence configuration. Option names are the camelCase of Prosody's; see doc/configuration.md.
// `defineConfig` only adds typing: a plain `export default { … }` works too.
import { defineConfig } from './core/config.ts';

export default defineConfig({
  // Where accounts, rosters and other data live (SQLite file) and where a self-signed
  // certificate is generated on first start when `tls` is not set.
  dataDir: './data',
  storage: 'sqlite',

  c2sPorts: [5222],
  c2sDirectTlsPorts: [5223],
  // interfaces: ['127.0.0.1'],

  // HTTP (WebSocket, BOSH, host-meta): plain and HTTPS ports; behind a reverse proxy, set
  // httpExternalUrl and list the proxy in trustedProxies (see doc/configuration.md).
  httpPorts: [5280],
  httpsPorts: [5281],
  // httpExternalUrl: 'https://chat.example.org/',
  // trustedProxies: ['127.0.0.1', '::1'],

  // Clients must use TLS before authenticating; PLAIN is only offered over TLS.
  c2sRequireEncryption: true,
  allowUnencryptedPlainAuth: false,

  // Extra directories searched for mod_<name>.ts|.js before the built-in modules/.
  pluginPaths: [],

  // c2s, iq, presence and message are always loaded (unless listed in modulesDisabled).
  modulesEnabled: [
    'tls', 'saslauth', 'bind', // streams: STARTTLS, SASL, resource binding
    'sasl2', 'bind2', 'fast', // XEP-0388 SASL2, XEP-0386 Bind2, XEP-0484 FAST (login in one round trip)
    'roster', 'offline', 'disco', 'caps', 'ping', // IM essentials
    'vcard', 'private', 'version', 'time', 'lastactivity', 'server_contact_info', // everyday XEPs
    'blocking', // XEP-0191
    'register', // XEP-0077: password change and account removal; sign-up only with allowRegistration
    'admin_shell', // `cadence shell` over <dataDir>/cadence.sock
    'websocket', 'bosh', 'host_meta', // web clients: /xmpp-websocket, /http-bind, /.well-known/host-meta
    // 'conversejs', // the Converse.js web client at https://localhost:5281/conversejs (doc/web.md)
    'smacks', 'csi', // XEP-0198 stream management (resumption survives restarts), XEP-0352 client state
    'carbons', // XEP-0280: copies of messages to all of a user's devices
    'mam', // XEP-0313: message archive (mam: { archiveExpiresAfter: '1y' } to keep a year)
    'pep', // XEP-0163: PEP on every account (OMEMO, avatars, bookmarks, nicknames)
    'adhoc', // XEP-0050 ad-hoc commands (modules' commands, exports offered as commands)
    'admin_adhoc', // XEP-0133 service administration commands for `admins`
  ],

  // Client streams (mod_c2s): limits and timeouts; these are the defaults.
  // c2s: { stanzaSizeLimit: 262144, preauthStanzaSizeLimit: 10240, maxDepth: 64, unauthenticatedTimeout: 60, keepaliveInterval: 300 },

  // In-band registration (sign-up from clients) is off unless you want an open server.
  // register: { allowRegistration: true },
  modulesDisabled: [],

  admins: [],

  virtualHosts: {
    localhost: {},
  },

  // Internal components run by a module. Multi-User Chat rooms (XEP-0045) live on
  // conference.localhost (options under `muc`), HTTP File Upload (XEP-0363) on upload.localhost
  // (options under `http_file_share`; doc/configuration.md, doc/web.md). `components: {}` turns them off.
  components: {
    'conference.localhost': { module: 'muc' },
    'upload.localhost': { module: 'http_file_share' },
  },

  // tls: { certificate: '/etc/cadence/certs/example.org.crt', key: '/etc/cadence/certs/example.org.key' },
  // Or certificates from Let's Encrypt, renewed by the server (doc/certificates.md): the CA connects
  // to port 80 for 'http-01' (served on httpPorts) or 443 for 'tls-alpn-01' (on c2sDirectTlsPorts).
  // acme: { email: 'admin@example.org', directory: 'letsencrypt', challenge: 'http-01' },
  // XEP-0487 connection data in /.well-known/host-meta.json: the server's public addresses.
  // host_meta: { ips: ['203.0.113.5'] },
  log: { level: 'info' },
});
