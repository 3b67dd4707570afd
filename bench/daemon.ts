/**
 * The daemon's timings, as figures rather than test assertions (a loaded machine makes any
 * wall-clock assertion flaky): how long a standby takes to lead after the leader's lock
 * session is cut, and how long graceful shutdown takes with a check running and with one
 * stuck past the deadline.
 *
 *   npm run build && node dist/bench/daemon.js [trials=5]
 *
 * Starts its own embedded Postgres for the leader lock. Prints min / median / max in ms.
 */
import { Client } from 'pg';
import { startDaemon, type Daemon } from '../src/daemon';
import { silentLogger } from '../src/core/logger';
import { startEmbeddedPostgres } from '../src/sandbox/embedded-postgres';
import { config, stubCheck, testRegistry, waitFor } from '../test/daemon/helpers';

function stats(xs: number[]): string {
  const s = [...xs].sort((a, b) => a - b);
  return `min ${s[0].toFixed(0)}  median ${s[Math.floor(s.length / 2)].toFixed(0)}  max ${s[s.length - 1].toFixed(0)} ms`;
}

async function query<T>(url: string, sql: string, params: unknown[] = []): Promise<T[]> {
  const c = new Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query(sql, params)).rows as T[];
  } finally {
    await c.end();
  }
}

async function takeover(url: string, key: number): Promise<number> {
  const registry = testRegistry([stubCheck('ticks', async () => undefined, { schedule: '* * * * * *' })]);
  const replica = (name: string) =>
    startDaemon({ loaded: config(`deployment: ${name}\nleader_lock: { url: "${url}", key: ${key} }\n`, registry), registry, listen: '127.0.0.1:0', logger: silentLogger(), maxRandomDelayMs: 0 });
  const open: Daemon[] = [];
  try {
    const a = await replica('a');
    open.push(a);
    await a.ready;
    const b = await replica('b');
    open.push(b);
    await b.ready;
    if (!a.isLeader() || b.isLeader()) throw new Error('expected replica a to lead');
    const [holder] = await query<{ pid: number }>(url, `SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND objid = $1`, [key]);
    const cutAt = Date.now();
    await query(url, 'SELECT pg_terminate_backend($1)', [holder.pid]);
    await waitFor(() => b.isLeader(), 'the standby to take the lock', 30_000, 5);
    return Date.now() - cutAt;
  } finally {
    await Promise.all(open.map((d) => d.close()));
  }
}

async function shutdown(checkMs: number, deadlineMs: number): Promise<number> {
  const registry = testRegistry([stubCheck('runs', () => new Promise((r) => setTimeout(r, checkMs)))]);
  const d = await startDaemon({
    loaded: config(`deployment: s\nchecks: { runs: { timeout: ${Math.ceil((checkMs + 1000) / 1000)}s } }\n`, registry),
    registry,
    listen: '127.0.0.1:0',
    logger: silentLogger(),
    shutdownDeadlineMs: deadlineMs,
  });
  await new Promise((r) => setTimeout(r, 50));
  const t0 = Date.now();
  await d.close();
  const ms = Date.now() - t0;
  await new Promise((r) => setTimeout(r, Math.max(0, checkMs - ms) + 50)); // let a stuck check end
  return ms;
}

async function main(): Promise<void> {
  const trials = Number(process.argv[2] ?? 5);
  if (!Number.isInteger(trials) || trials < 1) throw new Error(`trials must be a positive integer, got ${process.argv[2]}`);
  const pg = await startEmbeddedPostgres();
  try {
    const takeovers: number[] = [];
    for (let i = 0; i < trials; i++) takeovers.push(await takeover(pg.adminUrl, 9000 + i));
    console.log(`leader takeover after the lock session is cut (ticks every 1 s): ${stats(takeovers)}`);
    const waits: number[] = [];
    for (let i = 0; i < trials; i++) waits.push(await shutdown(800, 10_000));
    console.log(`shutdown with an 800 ms check running (deadline 10 s):       ${stats(waits)}`);
    const stuck: number[] = [];
    for (let i = 0; i < trials; i++) stuck.push(await shutdown(4_000, 300));
    console.log(`shutdown with a 4 s check stuck past the 300 ms deadline:    ${stats(stuck)}`);
  } finally {
    await pg.stop();
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
