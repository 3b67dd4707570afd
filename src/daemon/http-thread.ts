/**
 * The daemon's HTTP thread (a worker thread started by server.ts): its event loop runs the
 * listener and nothing else, so /healthz and /metrics answer in the time rendering takes
 * whatever the checks' thread is doing.
 *
 * - /metrics: the compliance series from a ComplianceMetrics kept here as a copy of the main
 *   thread's (its state, then every change in order: a scrape sees every value set before it);
 *   the main thread's own series (its heap, GC, event loop, handles) as it last sent them (it
 *   sends them every second: a scrape never waits for it); the process-wide ones (CPU, memory,
 *   descriptors, start time) read here every `wideEveryMs`, off the request path; and this
 *   thread's event-loop delay since it started
 *   (`aegis_audit_http_eventloop_delay_{p50,p99,max}_seconds`). A scrape does no more than
 *   render the compliance series if they changed and join the parts.
 * - /healthz: 200 while the main thread runs; 503 once it has not run for `stalledAfterMs`
 *   (a check stuck in a loop), so a liveness probe still sees a daemon that stopped working.
 * - Every other route is answered by the main thread (route() in server.ts); files it names
 *   are streamed from here.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createReadStream } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { parentPort, workerData } from 'node:worker_threads';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Gauge } from 'prom-client';
import { ComplianceMetrics, joinExposition, processMetrics, renderRegistry, serialised, threadSectionAsOpenMetrics } from '../outputs/metrics';
import type { Answer, FromHttpThread, HttpThreadData, ToHttpThread } from './server';
import { nameThisThread, thisThreadId } from '../core/threads';

nameThisThread('aegis-http');

const data = workerData as HttpThreadData;
const port = parentPort as NonNullable<typeof parentPort>;
const post = (m: FromHttpThread) => port.postMessage(m);
const beats = new BigInt64Array(data.heartbeat);

let metrics = new ComplianceMetrics();
let serving = -1;
/** The main thread's series as it last sent them, by format. */
const lastSection: Record<'text' | 'om', string> = { text: '', om: '' };

// This thread's own promptness, since it started: what /metrics and /healthz wait for besides their own work.
// The histogram holds the time between two runs of a 10 ms timer: the delay is what exceeds 10 ms.
const RESOLUTION_MS = 10;
const delay = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
delay.enable();
for (const [q, label] of [
  [50, 'p50'],
  [99, 'p99'],
  [100, 'max'],
] as const) {
  new Gauge({
    name: `aegis_audit_http_eventloop_delay_${label}_seconds`,
    help: `${label === 'max' ? 'Longest' : `The ${label}`} event-loop delay of the daemon's HTTP thread (the one serving /metrics and /healthz) since it started.`,
    registers: [processMetrics().wide],
    collect() {
      this.set(Math.max(0, (q === 100 ? delay.max : delay.percentile(q)) / 1e9 - RESOLUTION_MS / 1000));
    },
  });
}

/** The process-wide series, by format, as last read (every wideEveryMs, off the request path). */
const wide: Record<'text' | 'om', string | undefined> = { text: undefined, om: undefined };
const readWide = (): Promise<void> =>
  Promise.all(
    (['text', 'om'] as const).map((key) =>
      serialised(() => renderRegistry(processMetrics().wide, key === 'om')).then(
        (text) => void (wide[key] = text),
        (e: unknown) => post({ t: 'log', level: 'warn', msg: "Reading the process's metrics failed", fields: { err: e instanceof Error ? e.message : String(e) } }),
      ),
    ),
  ).then(() => undefined);
/** The first reading: a scrape before it is done waits for it. */
const wideRead = readWide();
setInterval(() => void readWide(), data.wideEveryMs).unref();

/**
 * Changes applied to `metrics` so far, progress apart from the rest: the compliance series
 * are a function of its state, each part rendered again only after a change of its own (a long
 * pass changes its progress many times a second and nothing else).
 */
const changes = { rest: 0, progress: 0 };
type Part = keyof typeof changes;
const rendered: Record<`${Part}:${'text' | 'om'}`, { at: number; text: string } | undefined> = {
  'rest:text': undefined,
  'rest:om': undefined,
  'progress:text': undefined,
  'progress:om': undefined,
};

async function renderPart(part: Part, openMetrics: boolean): Promise<string> {
  const key = `${part}:${openMetrics ? 'om' : 'text'}` as const;
  const at = changes[part];
  const cached = rendered[key];
  if (cached?.at === at) return cached.text;
  const text = await renderRegistry(part === 'rest' ? metrics.registry : metrics.progressRegistry, openMetrics);
  rendered[key] = { at, text };
  return text;
}

async function renderMetrics(openMetrics: boolean): Promise<{ contentType: string; body: string }> {
  const key = openMetrics ? 'om' : 'text';
  const [ours, progress] = await serialised(async () => [await renderPart('rest', openMetrics), await renderPart('progress', openMetrics)]);
  if (wide[key] === undefined) await wideRead;
  return joinExposition([ours, progress, lastSection[key], wide[key] ?? ''], openMetrics, metrics.registry.contentType);
}

function write(res: ServerResponse, a: Answer, head: boolean): void {
  res.writeHead(a.status, a.headers);
  if (head) return void res.end();
  if (a.file !== undefined) {
    createReadStream(a.file)
      .on('error', () => res.destroy())
      .pipe(res);
    return;
  }
  res.end(a.body);
}

function plain(status: number, body: string): Answer {
  return { status, headers: { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(body), 'Cache-Control': 'no-store' }, body };
}

/** While the state served is a listener's before its daemon: requests waiting for the daemon's (at most HOLD_MS). */
let held: (() => void)[] | undefined;
const HOLD_MS = 5_000;
const release = () => {
  const waiting = held ?? [];
  held = undefined;
  for (const go of waiting) go();
};

let requests = 0;
const answers = new Map<number, (a: Answer) => void>();

async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
  if (held) await new Promise<void>((go) => held?.push(go) ?? go());
  const head = req.method === 'HEAD';
  const path = (req.url ?? '/').split('?')[0];
  const own = (path === '/metrics' || path === '/healthz') && (req.method === 'GET' || head);
  if (own && path === '/healthz') {
    // The main thread marks every 500 ms that it runs.
    const stalledMs = Date.now() - Number(Atomics.load(beats, 0)) - 500;
    if (stalledMs > data.stalledAfterMs) return write(res, plain(503, `the checks' thread has not run for ${Math.floor(stalledMs / 1000)} s\n`), head);
    return write(res, plain(200, 'ok\n'), head);
  }
  if (own) {
    const { contentType, body } = await renderMetrics(/application\/openmetrics-text/i.test(req.headers.accept ?? ''));
    return write(res, { status: 200, headers: { 'Content-Type': contentType, 'Content-Length': Buffer.byteLength(body), 'Cache-Control': 'no-store' }, body }, head);
  }
  const n = ++requests;
  const answer = await new Promise<Answer>((resolve) => {
    answers.set(n, resolve);
    post({ t: 'request', n, req: { method: req.method ?? 'GET', path, head } });
  });
  write(res, answer, head);
}

const server = createServer((req, res) => {
  handle(req, res).catch((e: unknown) => {
    post({ t: 'log', level: 'error', msg: 'HTTP handler failed', fields: { err: e instanceof Error ? e.message : String(e), path: req.url } });
    if (!res.headersSent) write(res, plain(500, 'internal error\n'), false);
    else res.destroy();
  });
});
server.keepAliveTimeout = 5_000;

port.on('message', (m: ToHttpThread) => {
  switch (m.t) {
    case 'serve':
      serving = m.id;
      metrics = ComplianceMetrics.fromSnapshot(m.snapshot);
      changes.rest++;
      changes.progress++;
      // Rendered now, ahead of the first scrape (which would otherwise also pay for compiling the renderer).
      for (const om of [false, true]) serialised(async () => [await renderPart('rest', om), await renderPart('progress', om)]).catch(() => undefined);
      if (m.starting) {
        held ??= [];
        setTimeout(release, HOLD_MS).unref();
      } else release();
      return;
    case 'op':
      if (m.id !== serving) return;
      metrics.apply(m.op);
      // A check's progress changes only its progress series; any other change may change both.
      if (m.op.op !== 'progress') changes.rest++;
      changes.progress++;
      return;
    case 'answer':
      answers.get(m.n)?.(m.answer);
      answers.delete(m.n);
      return;
    case 'section':
      lastSection.text = m.text;
      lastSection.om = threadSectionAsOpenMetrics(m.text);
      return;
    case 'close': {
      // Idle keep-alive connections would hold close() open; in-flight requests get the deadline.
      server.closeIdleConnections();
      const t = setTimeout(() => server.closeAllConnections(), m.deadlineMs);
      t.unref();
      server.close(() => {
        clearTimeout(t);
        post({ t: 'closed' });
      });
      return;
    }
  }
});

server.once('error', (e: NodeJS.ErrnoException) => post({ t: 'listen-error', message: e.message, code: e.code }));
server.listen(data.port, data.host, () => {
  const a = server.address() as AddressInfo;
  post({ t: 'listening', address: `${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`, tid: thisThreadId() });
});
