/**
 * A real paging path for end-to-end tests and the paging benchmark: Prometheus (Debian's
 * /usr/bin/prometheus) scraping aegis-audit daemons and evaluating a rules file, Alertmanager
 * (/usr/bin/prometheus-alertmanager) routed by a given config whose receivers are pointed at a
 * webhook served here, and that webhook recording every notification with its arrival time.
 * Everything listens on 127.0.0.1, on free ports; stop() ends every process it started.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, request, type Server } from 'node:http';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';

export const PROMETHEUS = '/usr/bin/prometheus';
export const ALERTMANAGER = '/usr/bin/prometheus-alertmanager';

export interface WebhookAlert {
  status: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  startsAt: string;
}
export interface WebhookPayload {
  version: string;
  status: string;
  receiver: string;
  groupKey: string;
  groupLabels: Record<string, string>;
  alerts: WebhookAlert[];
}
/** One notification Alertmanager delivered: when it arrived (ms since the epoch) and what it said. */
export interface Notification {
  at: number;
  body: WebhookPayload;
}

export interface PagingStackOptions {
  /** A scratch folder (configs, TSDB, logs). */
  dir: string;
  /** host:port of each daemon to scrape. */
  targets: string[];
  /** The rules file Prometheus evaluates, as it is. */
  rulesFile: string;
  /** The Alertmanager config to route by; its receivers are replaced by webhooks to this process (one per receiver name). */
  alertmanagerConfig: string;
  scrapeInterval?: string;
  evaluationInterval?: string;
  jobName?: string;
}

export interface PagingStack {
  promAddress: string;
  amAddress: string;
  /** Every notification so far, in arrival order. */
  notifications: Notification[];
  /** The value of an instant query's first series, or undefined. */
  query(q: string): Promise<number | undefined>;
  stop(): Promise<void>;
}

/** Throws with what to install when a binary is missing (tests fail, never skip). */
export function requireBinaries(): void {
  for (const [path, pkg] of [
    [PROMETHEUS, 'prometheus'],
    [ALERTMANAGER, 'prometheus-alertmanager'],
  ]) {
    if (!existsSync(path)) throw new Error(`${path} not found: install the Debian package "${pkg}" (apt-get install -y ${pkg}; .ci/run does this)`);
  }
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createNetServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

export function httpGet(address: string, path: string): Promise<{ status: number; body: string }> {
  const i = address.lastIndexOf(':');
  return new Promise((resolve, reject) => {
    const req = request({ host: address.slice(0, i), port: Number(address.slice(i + 1)), path, headers: { connection: 'close' }, timeout: 5_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${path} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

/** Polls until `fn` returns a truthy value; bounded. */
export async function waitFor<T>(fn: () => Promise<T | undefined | false> | T | undefined | false, what: string, timeoutMs: number, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v as T;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

async function stopProcess(p: ChildProcess): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return;
  const exited = new Promise<void>((r) => p.once('exit', () => r()));
  p.kill('SIGTERM');
  const t = setTimeout(() => p.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(t);
}

type AmConfig = { receivers?: { name: string }[] } & Record<string, unknown>;

export async function startPagingStack(o: PagingStackOptions): Promise<PagingStack> {
  requireBinaries();
  mkdirSync(o.dir, { recursive: true });
  const notifications: Notification[] = [];
  const procs: ChildProcess[] = [];
  let webhook: Server | undefined;
  const stop = async () => {
    await Promise.all(procs.map(stopProcess));
    await new Promise<void>((r) => (webhook ? webhook.close(() => r()) : r()));
  };
  try {
    webhook = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const at = Date.now();
        try {
          notifications.push({ at, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as WebhookPayload });
          res.writeHead(200).end();
        } catch {
          res.writeHead(400).end();
        }
      });
    });
    await new Promise<void>((r) => webhook?.listen(0, '127.0.0.1', () => r()));
    const hook = `http://127.0.0.1:${(webhook.address() as AddressInfo).port}`;

    // Alertmanager: the given routing, every receiver a webhook here
    const am = parse(readFileSync(o.alertmanagerConfig, 'utf8')) as AmConfig;
    am.receivers = (am.receivers ?? []).map((r) => ({ name: r.name, webhook_configs: [{ url: `${hook}/${encodeURIComponent(r.name)}`, send_resolved: true }] }));
    writeFileSync(join(o.dir, 'am.yml'), stringify(am));
    const amPort = await freePort();
    const amProc = spawn(
      ALERTMANAGER,
      [`--config.file=${join(o.dir, 'am.yml')}`, `--storage.path=${join(o.dir, 'am')}`, `--web.listen-address=127.0.0.1:${amPort}`, '--cluster.listen-address=', '--log.level=warn'],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    amProc.stderr?.pipe(createWriteStream(join(o.dir, 'am.log')));
    procs.push(amProc);

    // Prometheus: the rules file as it is
    const promPort = await freePort();
    writeFileSync(
      join(o.dir, 'prom.yml'),
      stringify({
        global: { scrape_interval: o.scrapeInterval ?? '1s', evaluation_interval: o.evaluationInterval ?? '1s' },
        rule_files: [o.rulesFile],
        alerting: { alertmanagers: [{ static_configs: [{ targets: [`127.0.0.1:${amPort}`] }] }] },
        scrape_configs: [{ job_name: o.jobName ?? 'aegis-audit', static_configs: [{ targets: o.targets }] }],
      }),
    );
    const promProc = spawn(
      PROMETHEUS,
      [`--config.file=${join(o.dir, 'prom.yml')}`, `--storage.tsdb.path=${join(o.dir, 'tsdb')}`, `--web.listen-address=127.0.0.1:${promPort}`, '--log.level=warn'],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    promProc.stderr?.pipe(createWriteStream(join(o.dir, 'prom.log')));
    procs.push(promProc);

    const ready = async (address: string) => {
      try {
        return (await httpGet(address, '/-/ready')).status === 200;
      } catch {
        return false;
      }
    };
    const amAddress = `127.0.0.1:${amPort}`;
    const promAddress = `127.0.0.1:${promPort}`;
    await waitFor(() => ready(amAddress), `Alertmanager to be ready (log: ${join(o.dir, 'am.log')})`, 60_000, 200);
    await waitFor(() => ready(promAddress), `Prometheus to be ready (log: ${join(o.dir, 'prom.log')})`, 60_000, 200);

    return {
      promAddress,
      amAddress,
      notifications,
      async query(q) {
        const r = await httpGet(promAddress, `/api/v1/query?query=${encodeURIComponent(q)}`);
        const v = (JSON.parse(r.body) as { data?: { result?: { value: [number, string] }[] } }).data?.result?.[0]?.value[1];
        return v === undefined ? undefined : Number(v);
      },
      stop,
    };
  } catch (e) {
    await stop();
    throw e;
  }
}

/** The firing notifications, grouped by the `check` of their group (the auditor's own alerts: ''). */
export function firingByCheck(notifications: readonly Notification[]): Map<string, Notification[]> {
  const out = new Map<string, Notification[]>();
  for (const n of notifications) {
    if (n.body.status !== 'firing') continue;
    const check = n.body.groupLabels.check ?? '';
    out.set(check, [...(out.get(check) ?? []), n]);
  }
  return out;
}
