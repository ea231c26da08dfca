declare module 'selfsigned' {
  export interface GenerateOptions {
    keyType?: 'rsa' | 'ec';
    keySize?: number;
    curve?: 'P-256' | 'P-384' | 'P-521';
    algorithm?: 'sha1' | 'sha256' | 'sha384' | 'sha512';
    notBeforeDate?: Date;
    notAfterDate?: Date;
    extensions?: Record<string, unknown>[];
  }
  export interface Pems {
    private: string;
    public: string;
    cert: string;
    fingerprint: string;
  }
  export function generate(attrs?: { name: string; value: string }[] | null, options?: GenerateOptions): Promise<Pems>;
  const selfsigned: { generate: typeof generate };
  export default selfsigned;
}
