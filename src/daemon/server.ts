/**
 * The daemon's HTTP surface (node:http, nothing heavier): /metrics, /healthz, /readyz,
 * /report and /report.json. Every handler reads cached state; none runs a check.
 *
 * The listener lives on a thread of its own (http-thread.ts): a check that holds the daemon's
 * main thread (synchronous parsing, a report's templates, a GC pause) does not delay /metrics
 * or /healthz. The compliance series reach that thread as changes, in order, as they are made
 * (ComplianceMetrics.mirror), so a scrape sees every value set before it; what only the main
 * thread can read (its heap, GC, event loop and handles) it sends every `sectionEveryMs`
 * (1 s), and a scrape serves the latest: no scrape waits for this thread.
 *
 * A fleet's daemon serves the index of its deployments at `/` and `/report` (JSON at
 * `/report.json`), and each deployment's report at `/<deployment>/report` (and
 * `/<deployment>/report.json`); names are looked up among the configured deployments, never
 * used as a path.
 */
import { existsSync, promises as fs } from 'node:fs';
import { resolve } from 'node:path';
import { Worker } from 'node:worker_threads';
import type { Logger } from '../core/logger';
import { describeError } from '../core/redact';
import type { Report } from '../core/types';
import { ComplianceMetrics, type MetricsOp, type MetricsSnapshot } from '../outputs/metrics';
import { renderFleetIndex, sortIndex, type FleetIndexEntry } from '../outputs/fleet-index';
import { TOOL_VERSION } from '../core/report';

/** What a fleet's daemon serves besides the metrics. */
export interface FleetServerState {
  deployments(): readonly string[];
  report(deployment: string): Report | undefined;
  /** Where the deployment's HTML report is written, if anywhere. */
  htmlReportPath(deployment: string): string | undefined;
  index(): FleetIndexEntry[];
}

export interface ServerState {
  metrics: ComplianceMetrics;
  ready(): { ready: boolean; reason: string };
  report(): Report | undefined;
  /** Path of the latest HTML report, if reports are written somewhere. */
  htmlReportPath?: string;
  /** The checks' runbook files by file name: the report's relative runbook links, followed from /report, end in one. */
  runbooks?: ReadonlyMap<string, string>;
  /** Set for a fleet config: `/` and `/report` are its index, each deployment's report under `/<deployment>/`. */
  fleet?: FleetServerState;
  /** A listener opened before its daemon: requests wait (up to 5 s) for the daemon's state. */
  starting?: boolean;
}

/** `host:port`; an empty host listens on every interface (as the config schema allows). */
export function parseListen(listen: string): { host: string | undefined; port: number } {
  const i = listen.lastIndexOf(':');
  const host = listen.slice(0, i).replace(/^\[(.*)\]$/, '$1');
  const port = Number(listen.slice(i + 1));
  if (i < 0 || !Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`invalid listen address "${listen}" (expected host:port)`);
  return { host: host === '' ? undefined : host, port };
}

/** What a route answers: a body, or a file the HTTP thread streams. */
export interface Answer {
  status: number;
  headers: Record<string, string | number>;
  body?: string;
  /** Streamed from disk by the HTTP thread (its size is in Content-Length). */
  file?: string;
}

/** The request as the HTTP thread hands it on. */
export interface AskedRequest {
  method: string;
  path: string;
  head: boolean;
}

function text(status: number, type: string, body: string, extra: Record<string, string> = {}): Answer {
  return { status, headers: { 'Content-Type': type, 'Content-Length': Buffer.byteLength(body), 'Cache-Control': 'no-store', ...extra }, body };
}

function fileAnswer(path: string, size: number): Answer {
  return { status: 200, headers: { 'Content-Type': 'text/html; charset=utf-8', 'Content-Length': size, 'Cache-Control': 'no-store' }, file: path };
}

/** Every route besides /metrics and /healthz (the HTTP thread answers those itself), from this thread's state. */
export async function route(state: ServerState, req: AskedRequest): Promise<Answer> {
  if (req.method !== 'GET' && !req.head) return text(405, 'text/plain; charset=utf-8', 'method not allowed\n', { Allow: 'GET, HEAD' });
  const path = req.path;
  if (state.fleet) {
    const answered = await routeFleet(state.fleet, path);
    if (answered) return answered;
  }
  switch (path) {
    case '/metrics': {
      // Answered by the HTTP thread; here only for a caller that routes everything through this thread.
      const { contentType, body } = await state.metrics.render(false);
      return text(200, contentType, body);
    }
    case '/healthz':
      return text(200, 'text/plain; charset=utf-8', 'ok\n');
    case '/readyz': {
      const r = state.ready();
      return text(r.ready ? 200 : 503, 'text/plain; charset=utf-8', `${r.reason}\n`);
    }
    case '/report': {
      const html = state.htmlReportPath;
      if (html) {
        const st = await fs.stat(html).catch(() => undefined);
        if (st?.isFile()) return fileAnswer(html, st.size);
      }
      return jsonReport(state.report());
    }
    case '/report.json':
      return jsonReport(state.report());
    case '/':
      return text(200, 'text/html; charset=utf-8', '<!doctype html><title>aegis-audit</title><h1>aegis-audit daemon</h1><ul><li><a href="/metrics">/metrics</a><li><a href="/report">/report</a><li><a href="/report.json">/report.json</a><li><a href="/healthz">/healthz</a><li><a href="/readyz">/readyz</a></ul>\n');
    default: {
      // A runbook link of /report: served by its file name, and only the checks' own runbooks.
      const name = path.slice(path.lastIndexOf('/') + 1);
      const runbook = name.endsWith('.md') ? state.runbooks?.get(name) : undefined;
      if (runbook) {
        const body = await fs.readFile(runbook, 'utf8').catch(() => undefined);
        if (body !== undefined) return text(200, 'text/plain; charset=utf-8', body, { 'X-Content-Type-Options': 'nosniff' });
      }
      return text(404, 'text/plain; charset=utf-8', 'not found\n');
    }
  }
}

/** The fleet's pages; undefined when `path` is none of them (the common paths and runbooks follow). */
async function routeFleet(fleet: FleetServerState, path: string): Promise<Answer | undefined> {
  if (path === '/' || path === '/report') return text(200, 'text/html; charset=utf-8', renderFleetIndex(fleet.index(), { generatedAt: new Date() }));
  if (path === '/report.json') {
    const body = { schemaVersion: 1, tool: { name: 'aegis-audit', version: TOOL_VERSION }, generatedAt: new Date().toISOString(), deployments: sortIndex(fleet.index()) };
    return text(200, 'application/json; charset=utf-8', `${JSON.stringify(body, null, 2)}\n`);
  }
  const m = /^\/([^/]+)\/(report|report\.html|report\.json)$/.exec(path);
  if (!m) return undefined;
  let name: string;
  try {
    name = decodeURIComponent(m[1]);
  } catch {
    return undefined;
  }
  if (!fleet.deployments().includes(name)) return undefined;
  if (m[2] !== 'report.json') {
    const html = fleet.htmlReportPath(name);
    const st = html ? await fs.stat(html).catch(() => undefined) : undefined;
    if (html && st?.isFile()) return fileAnswer(html, st.size);
  }
  return jsonReport(fleet.report(name));
}

function jsonReport(report: Report | undefined): Answer {
  if (!report) return text(503, 'application/json; charset=utf-8', `${JSON.stringify({ error: 'no run has finished yet' })}\n`);
  return text(200, 'application/json; charset=utf-8', `${JSON.stringify(report, null, 2)}\n`);
}

export interface RunningServer {
  /** `host:port` actually bound (port resolved when 0 was asked). */
  address: string;
  /** The HTTP thread's id in the kernel (Linux), when it could tell. */
  threadId?: number;
  /** Answers from `state` from now on (a reloaded daemon takes over the listener without a gap). */
  setState(state: ServerState): void;
  close(deadlineMs: number): Promise<void>;
}

/** What a server answers before a daemon took it over: alive, not ready, no series yet. */
export function startingState(): ServerState {
  return { metrics: new ComplianceMetrics(), ready: () => ({ ready: false, reason: 'starting' }), report: () => undefined, starting: true };
}

/** Settings of the HTTP thread (workerData). */
export interface HttpThreadData {
  host: string | undefined;
  port: number;
  /** Shared with this thread (a BigInt64Array): [0] is when this thread last ran its heartbeat, in ms since the epoch. */
  heartbeat: SharedArrayBuffer;
  /** How often the process-wide series (CPU, memory, descriptors) are read again off the request path. */
  wideEveryMs: number;
  /** /healthz fails once this thread has not run for this long. */
  stalledAfterMs: number;
}

/** Messages between this thread and the HTTP thread. */
export type ToHttpThread =
  | { t: 'serve'; id: number; snapshot: MetricsSnapshot; starting: boolean }
  | { t: 'op'; id: number; op: MetricsOp }
  | { t: 'answer'; n: number; answer: Answer }
  /** This thread's own series (Prometheus text), sent every sectionEveryMs. */
  | { t: 'section'; text: string }
  | { t: 'close'; deadlineMs: number };
export type FromHttpThread =
  | { t: 'listening'; address: string; tid?: number }
  | { t: 'listen-error'; message: string; code?: string }
  | { t: 'request'; n: number; req: AskedRequest }
  | { t: 'log'; level: 'warn' | 'error'; msg: string; fields: Record<string, unknown> }
  | { t: 'closed' };

function httpThreadFile(): string {
  const here = resolve(__dirname, 'http-thread.js');
  if (existsSync(here)) return here;
  return resolve(__dirname, '../../dist/src/daemon/http-thread.js');
}

/** How often this thread marks that it runs (for /healthz's stall detection). */
const HEARTBEAT_MS = 500;

/**
 * Opens the daemon's listener on a thread of its own (src/daemon/http-thread.ts), whose event
 * loop runs nothing else: /healthz, and /metrics from a copy of the state's ComplianceMetrics
 * that every change made here reaches in order, answer whatever this thread (the checks') is
 * doing. The other routes (reports, readiness, fleet pages) are answered from this thread's state.
 */
export async function startServer(
  initial: ServerState,
  listen: string,
  logger: Logger,
  opts: { sectionEveryMs?: number; wideEveryMs?: number; stalledAfterMs?: number } = {},
): Promise<RunningServer> {
  const { host, port } = parseListen(listen);
  const heartbeat = new SharedArrayBuffer(8);
  const beats = new BigInt64Array(heartbeat);
  const beat = () => Atomics.store(beats, 0, BigInt(Date.now()));
  beat();
  const data: HttpThreadData = { host, port, heartbeat, wideEveryMs: opts.wideEveryMs ?? 1_000, stalledAfterMs: opts.stalledAfterMs ?? 30_000 };
  const worker = new Worker(httpThreadFile(), { workerData: data, stdout: false, stderr: false });
  const beating = setInterval(beat, HEARTBEAT_MS);
  beating.unref();
  let state = initial;
  // This thread's own series, sent ahead of the scrapes: a scrape never waits for this thread
  // (busy with a check, or in a GC pause). prom-client's event-loop figures cover the time
  // since the previous send. One render at a time: a slow one is not queued behind.
  let sending = false;
  const sendSection = () => {
    if (sending) return;
    sending = true;
    state.metrics.renderThreadSection(false).then(
      (text) => {
        sending = false;
        post({ t: 'section', text });
      },
      (e: unknown) => {
        sending = false;
        logger.error({ err: describeError(e) }, "Rendering this thread's metrics failed");
      },
    );
  };
  const sectionTimer = setInterval(sendSection, opts.sectionEveryMs ?? 1_000);
  sectionTimer.unref();
  let serving = 0;
  let stopMirror: (() => void) | undefined;
  const post = (m: ToHttpThread) => worker.postMessage(m);
  const serve = (next: ServerState) => {
    stopMirror?.();
    const id = ++serving;
    const { snapshot, stop } = next.metrics.mirror((op) => post({ t: 'op', id, op }));
    stopMirror = stop;
    post({ t: 'serve', id, snapshot, starting: next.starting === true });
  };
  let closedResolve: (() => void) | undefined;
  const closed = new Promise<void>((r) => (closedResolve = r));
  let threadId: number | undefined;
  const listening = new Promise<string>((resolveListen, reject) => {
    worker.on('message', (m: FromHttpThread) => {
      switch (m.t) {
        case 'listening':
          threadId = m.tid;
          return resolveListen(m.address);
        case 'listen-error':
          return reject(Object.assign(new Error(m.message), m.code ? { code: m.code } : {}));
        case 'request':
          void route(state, m.req).then(
            (answer) => post({ t: 'answer', n: m.n, answer }),
            (e: unknown) => {
              logger.error({ err: describeError(e), path: m.req.path }, 'HTTP handler failed');
              post({ t: 'answer', n: m.n, answer: text(500, 'text/plain; charset=utf-8', 'internal error\n') });
            },
          );
          return;
        case 'log':
          logger[m.level](m.fields, m.msg);
          return;
        case 'closed':
          closedResolve?.();
          return;
      }
    });
    worker.once('error', (e) => {
      reject(e);
      logger.error({ err: describeError(e) }, 'The HTTP thread failed');
      closedResolve?.();
    });
    worker.once('exit', () => {
      reject(new Error('the HTTP thread exited before listening'));
      closedResolve?.();
    });
  });
  serve(initial);
  sendSection();
  let address: string;
  try {
    address = await listening;
  } catch (e) {
    clearInterval(beating);
    clearInterval(sectionTimer);
    stopMirror?.();
    await worker.terminate();
    throw e;
  }
  let closing: Promise<void> | undefined;
  return {
    address,
    threadId,
    setState: (next) => {
      state = next;
      serve(next);
    },
    close: (deadlineMs) =>
      (closing ??= (async () => {
        post({ t: 'close', deadlineMs });
        await closed;
        clearInterval(beating);
        clearInterval(sectionTimer);
        stopMirror?.();
        await worker.terminate();
      })()),
  };
}
