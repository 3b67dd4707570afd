/**
 * Creating the sources of a run: credentials the config points at (a password in a database
 * or Prometheus URL) are registered with the run's scrubber before any client can echo them.
 */
import { createSources } from '../../src/sources';
import { configSchema } from '../../src/config/schema';
import { KnownSecrets } from '../../src/core/secret';
import { silentLogger } from '../../src/core/logger';

test('passwords in source URLs are known secrets of the run', async () => {
  const config = configSchema.parse({
    deployment: 't',
    sources: {
      postgres: { url: 'postgres://auditor:Pg%2FPassw0rd-9876@127.0.0.1:1/audit' },
      prometheus: { url: 'http://reader:prom-pass-4321xyz@127.0.0.1:1' },
    },
    state: { postgres: { url: 'postgres://state:state-pass-5555abc@127.0.0.1:1/audit' } },
  });
  const known = new KnownSecrets();
  const open = createSources(config, { knownSecrets: known, logger: silentLogger() });
  try {
    expect(known.scrub('pw Pg/Passw0rd-9876 end')).toBe('pw [redacted] end');
    expect(known.scrub('pw prom-pass-4321xyz end')).toBe('pw [redacted] end');
    expect(known.scrub('pw state-pass-5555abc end')).toBe('pw [redacted] end');
    // The rest of the URL is not secret and stays readable.
    expect(known.scrub('host 127.0.0.1 user auditor')).toBe('host 127.0.0.1 user auditor');
  } finally {
    await open.close();
  }
});
