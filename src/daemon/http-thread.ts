/**
 * The daemon's HTTP thread (a worker thread started by server.ts): its event loop runs the
 * listener and nothing else, so /healthz and /metrics answer in the time rendering takes
 * whatever the checks' thread is doing.
 *
 * - /metrics: the compliance series from a ComplianceMetrics kept here as a copy of the main
 *   thread's (its state, then every change in order: a scrape sees every value set before it);
 *   the main thread's own series (its heap, GC, event loop, handles),
 *   asked of it at each scrape and waited for at most `sectionWaitMs`, else its last answer;
 *   the process-wide ones (CPU, memory, descriptors, start time) read here; and this thread's
 *   event-loop delay since it started (`aegis_audit_http_eventloop_delay_{p50,p99,max}_seconds`).
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
import { ComplianceMetrics, joinExposition, processMetrics, renderRegistry, serialised } from '../outputs/metrics';
import type { Answer, FromHttpThread, HttpThreadData, ToHttpThread } from './server';

const data = workerData as HttpThreadData;
const port = parentPort as NonNullable<typeof parentPort>;
const post = (m: FromHttpThread) => port.postMessage(m);
const beats = new BigInt64Array(data.heartbeat);

let metrics = new ComplianceMetrics();
let serving = -1;
let asked = 0;
const waiting = new Map<number, (text: string) => void>();
/** The main thread's last section, by format. */
const lastSection: Record<'text' | 'om', string | undefined> = { text: undefined, om: undefined };

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

function askSection(openMetrics: boolean): Promise<string> {
  const n = ++asked;
  return new Promise((resolve) => {
    waiting.set(n, resolve);
    post({ t: 'section?', n, openMetrics });
  });
}

/** The main thread's series: its answer if it comes within sectionWaitMs, else the last it gave. */
async function mainSection(openMetrics: boolean): Promise<string> {
  const key = openMetrics ? 'om' : 'text';
  const fresh = askSection(openMetrics);
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<undefined>((r) => (timer = setTimeout(() => r(undefined), data.sectionWaitMs)));
  const got = await Promise.race([fresh, late]);
  clearTimeout(timer);
  return got ?? lastSection[key] ?? '';
}

/** Changes applied to `metrics` so far: the compliance series are a function of its state, rendered again only after a change. */
let changes = 0;
const rendered: Record<'text' | 'om', { changes: number; text: string } | undefined> = { text: undefined, om: undefined };

async function renderOurs(openMetrics: boolean): Promise<string> {
  const key = openMetrics ? 'om' : 'text';
  const at = changes;
  const cached = rendered[key];
  if (cached?.changes === at) return cached.text;
  const text = await renderRegistry(metrics.registry, openMetrics);
  rendered[key] = { changes: at, text };
  return text;
}

async function renderMetrics(openMetrics: boolean): Promise<{ contentType: string; body: string }> {
  const section = mainSection(openMetrics);
  const own = serialised(async () => [await renderOurs(openMetrics), await renderRegistry(processMetrics().wide, openMetrics)]);
  const [[ours, wide], main] = await Promise.all([own, section]);
  return joinExposition([ours, main, wide], openMetrics, metrics.registry.contentType);
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
      changes++;
      if (m.starting) {
        held ??= [];
        setTimeout(release, HOLD_MS).unref();
      } else release();
      // The first scrape need not wait for the main thread's series.
      lastSection.text = lastSection.om = undefined;
      void askSection(false).then((t) => (lastSection.text ??= t));
      void askSection(true).then((t) => (lastSection.om ??= t));
      return;
    case 'op':
      if (m.id !== serving) return;
      metrics.apply(m.op);
      changes++;
      return;
    case 'answer':
      answers.get(m.n)?.(m.answer);
      answers.delete(m.n);
      return;
    case 'section':
      lastSection[m.openMetrics ? 'om' : 'text'] = m.text;
      waiting.get(m.n)?.(m.text);
      waiting.delete(m.n);
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
  post({ t: 'listening', address: `${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}` });
});
