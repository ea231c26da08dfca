//% requires_core_features: stanza-events-v1, module-options-typed
// Software Version (XEP-0092): the server answers jabber:iq:version queries sent to its domain
// with its name and version; the operating system only when `includeOs` is set (§5: revealing
// the OS must be something an administrator can turn off, so it is off by default).
import os from 'node:os';
import { defineModule, xml } from '../core/api.ts';

export const NS_VERSION = 'jabber:iq:version';

export default defineModule({
  description: 'Software Version (XEP-0092)',
  options: {
    name: { type: 'string', description: 'Software name in version replies', default: 'Cadence' },
    version: { type: 'string', description: "Version in replies (default: the server's own version)", default: '' },
    includeOs: { type: 'boolean', description: 'Include the operating system in version replies', default: false },
  },
  load(module) {
    module.addFeature(NS_VERSION);
    module.hook(`iq-get/host/${NS_VERSION}:query`, ({ origin, stanza }) => {
      const query = xml(
        'query',
        { xmlns: NS_VERSION },
        xml('name', {}, module.option('name')),
        xml('version', {}, module.option('version') || module.serverInfo.version),
      );
      if (module.option('includeOs')) query.c('os').t(`${os.type()} ${os.release()}`);
      origin.send(module.iqResult(stanza, query));
      return true;
    });
  },
});
