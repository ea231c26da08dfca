// An in-process server core (memory storage, no listeners) for unit tests of the managers.
import { Config, validateConfig, type CadenceConfig } from '../../core/config.ts';
import { Server } from '../../core/server.ts';

export function makeServer(raw: Partial<CadenceConfig> = {}): Server {
  const cfg = validateConfig(
    { storage: 'memory', dataDir: '/nonexistent', virtualHosts: { 'example.org': {} }, ...raw },
    () => true,
  );
  const server = new Server(new Config(cfg, undefined));
  for (const h of server.config.hosts) server.activateHost(h.name);
  return server;
}
