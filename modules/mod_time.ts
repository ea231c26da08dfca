//% requires_core_features: stanza-events-v1, module-options-typed, events-async
// Entity Time (XEP-0202): the server answers urn:xmpp:time queries sent to its domain with its
// UTC time (XEP-0082 DateTime profile, in UTC) and its offset from UTC (XEP-0082 TZD, "±hh:mm").
// The offset is that of the `timezone` option (an IANA zone such as 'Europe/Paris'), or of the
// system's local zone when it is empty. luxon (with the time zone data it reads through Intl) is
// loaded at the first use, not at start: ~2 MiB of an idle server that nobody asks the time.
import { defineModule, xml } from '../core/api.ts';

export const NS_TIME = 'urn:xmpp:time';

export default defineModule({
  description: 'Entity Time (XEP-0202)',
  options: {
    timezone: { type: 'string', description: "IANA time zone whose offset is reported (default: the system's)", default: '' },
  },
  async load(module) {
    const zone = module.option('timezone');
    if (zone && !(await import('luxon')).IANAZone.isValidZone(zone)) throw new Error(`time.timezone: '${zone}' is not a known IANA time zone`);
    module.addFeature(NS_TIME);
    module.hook(`iq-get/host/${NS_TIME}:time`, async ({ origin, stanza }) => {
      const { DateTime } = await import('luxon');
      const now = DateTime.now().startOf('second');
      const local = zone ? now.setZone(zone) : now.toLocal();
      const time = xml(
        'time',
        { xmlns: NS_TIME },
        xml('tzo', {}, local.toFormat('ZZ')),
        xml('utc', {}, now.toUTC().toISO({ suppressMilliseconds: true }) ?? ''),
      );
      origin.send(module.iqResult(stanza, time));
      return true;
    });
  },
});
