/**
 * The daemon's HTTP surface (node:http, nothing heavier): /metrics, /healthz, /readyz,
 * /report and /report.json. Every handler reads cached state; none runs a check.
 *
 * A fleet's daemon serves the index of its deployments at `/` and `/report` (JSON at
 * `/report.json`), and each deployment's report at `/<deployment>/report` (and
 * `/<deployment>/report.json`); names are looked up among the configured deployments, never
 * used as a path.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createReadStream, promises as fs } from 'node:fs';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../core/logger';
import { describeError } from '../core/redact';
import type { Report } from '../core/types';
import { ComplianceMetrics } from '../outputs/metrics';
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
}

/** `host:port`; an empty host listens on every interface (as the config schema allows). */
export function parseListen(listen: string): { host: string | undefined; port: number } {
  const i = listen.lastIndexOf(':');
  const host = listen.slice(0, i).replace(/^\[(.*)\]$/, '$1');
  const port = Number(listen.slice(i + 1));
  if (i < 0 || !Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`invalid listen address "${listen}" (expected host:port)`);
  return { host: host === '' ? undefined : host, port };
}

function send(res: ServerResponse, status: number, type: string, body: string, head = false): void {
  res.writeHead(status, { 'Content-Type': type, 'Content-Length': Buffer.byteLength(body), 'Cache-Control': 'no-store' });
  res.end(head ? undefined : body);
}

function wantsOpenMetrics(req: IncomingMessage): boolean {
  return /application\/openmetrics-text/i.test(req.headers.accept ?? '');
}

async function handle(state: ServerState, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const head = req.method === 'HEAD';
  if (req.method !== 'GET' && !head) {
    res.setHeader('Allow', 'GET, HEAD');
    return send(res, 405, 'text/plain; charset=utf-8', 'method not allowed\n');
  }
  const path = (req.url ?? '/').split('?')[0];
  if (state.fleet) {
    const answered = await handleFleet(state.fleet, path, res, head);
    if (answered) return;
  }
  switch (path) {
    case '/metrics': {
      const { contentType, body } = await state.metrics.render(wantsOpenMetrics(req));
      return send(res, 200, contentType, body, head);
    }
    case '/healthz':
      return send(res, 200, 'text/plain; charset=utf-8', 'ok\n', head);
    case '/readyz': {
      const r = state.ready();
      return send(res, r.ready ? 200 : 503, 'text/plain; charset=utf-8', `${r.reason}\n`, head);
    }
    case '/report': {
      const html = state.htmlReportPath;
      if (html) {
        const st = await fs.stat(html).catch(() => undefined);
        if (st?.isFile()) {
          res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Content-Length': st.size, 'Cache-Control': 'no-store' });
          if (head) return void res.end();
          createReadStream(html).on('error', () => res.destroy()).pipe(res);
          return;
        }
      }
      return sendReport(state, res, head);
    }
    case '/report.json':
      return sendReport(state, res, head);
    case '/':
      return send(res, 200, 'text/html; charset=utf-8', '<!doctype html><title>aegis-audit</title><h1>aegis-audit daemon</h1><ul><li><a href="/metrics">/metrics</a><li><a href="/report">/report</a><li><a href="/report.json">/report.json</a><li><a href="/healthz">/healthz</a><li><a href="/readyz">/readyz</a></ul>\n', head);
    default: {
      // A runbook link of /report: served by its file name, and only the checks' own runbooks.
      const name = path.slice(path.lastIndexOf('/') + 1);
      const runbook = name.endsWith('.md') ? state.runbooks?.get(name) : undefined;
      if (runbook) {
        const text = await fs.readFile(runbook, 'utf8').catch(() => undefined);
        if (text !== undefined) {
          res.setHeader('X-Content-Type-Options', 'nosniff');
          return send(res, 200, 'text/plain; charset=utf-8', text, head);
        }
      }
      return send(res, 404, 'text/plain; charset=utf-8', 'not found\n', head);
    }
  }
}

/** The fleet's pages; false when `path` is none of them (the common paths and runbooks follow). */
async function handleFleet(fleet: FleetServerState, path: string, res: ServerResponse, head: boolean): Promise<boolean> {
  if (path === '/' || path === '/report') {
    send(res, 200, 'text/html; charset=utf-8', renderFleetIndex(fleet.index(), { generatedAt: new Date() }), head);
    return true;
  }
  if (path === '/report.json') {
    const body = { schemaVersion: 1, tool: { name: 'aegis-audit', version: TOOL_VERSION }, generatedAt: new Date().toISOString(), deployments: sortIndex(fleet.index()) };
    send(res, 200, 'application/json; charset=utf-8', `${JSON.stringify(body, null, 2)}\n`, head);
    return true;
  }
  const m = /^\/([^/]+)\/(report|report\.html|report\.json)$/.exec(path);
  if (!m) return false;
  let name: string;
  try {
    name = decodeURIComponent(m[1]);
  } catch {
    return false;
  }
  if (!fleet.deployments().includes(name)) return false;
  if (m[2] !== 'report.json') {
    const html = fleet.htmlReportPath(name);
    const st = html ? await fs.stat(html).catch(() => undefined) : undefined;
    if (html && st?.isFile()) {
      res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Content-Length': st.size, 'Cache-Control': 'no-store' });
      if (head) res.end();
      else createReadStream(html).on('error', () => res.destroy()).pipe(res);
      return true;
    }
  }
  sendJsonReport(fleet.report(name), res, head);
  return true;
}

function sendReport(state: ServerState, res: ServerResponse, head: boolean): void {
  sendJsonReport(state.report(), res, head);
}

function sendJsonReport(report: Report | undefined, res: ServerResponse, head: boolean): void {
  if (!report) return send(res, 503, 'application/json; charset=utf-8', `${JSON.stringify({ error: 'no run has finished yet' })}\n`, head);
  send(res, 200, 'application/json; charset=utf-8', `${JSON.stringify(report, null, 2)}\n`, head);
}

export interface RunningServer {
  server: Server;
  /** `host:port` actually bound (port resolved when 0 was asked). */
  address: string;
  /** Answers from `state` from now on (a reloaded daemon takes over the listener without a gap). */
  setState(state: ServerState): void;
  close(deadlineMs: number): Promise<void>;
}

/** What a server answers before a daemon took it over: alive, not ready, no series yet. */
export function startingState(): ServerState {
  return { metrics: new ComplianceMetrics(), ready: () => ({ ready: false, reason: 'starting' }), report: () => undefined };
}

export async function startServer(initial: ServerState, listen: string, logger: Logger): Promise<RunningServer> {
  const { host, port } = parseListen(listen);
  let state = initial;
  const server = createServer((req, res) => {
    handle(state, req, res).catch((e: unknown) => {
      logger.error({ err: describeError(e), path: req.url }, 'HTTP handler failed');
      if (!res.headersSent) send(res, 500, 'text/plain; charset=utf-8', 'internal error\n');
      else res.destroy();
    });
  });
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const a = server.address() as AddressInfo;
  const address = `${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`;
  return {
    server,
    address,
    setState: (next) => {
      state = next;
    },
    close: (deadlineMs) =>
      new Promise<void>((resolve) => {
        // Idle keep-alive connections would hold close() open; in-flight requests get the deadline.
        server.closeIdleConnections();
        const t = setTimeout(() => server.closeAllConnections(), deadlineMs);
        t.unref();
        server.close(() => {
          clearTimeout(t);
          resolve();
        });
      }),
  };
}
