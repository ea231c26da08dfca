// Minimal typings for the CommonJS `saslprep` package (module.exports = saslprep).
declare module 'saslprep' {
  export default function saslprep(s: string, opts?: { allowUnassigned?: boolean }): string;
}
