/**
 * Paging end to end with the real binaries: the daemon audits JSON-lines logs this test
 * writes; Prometheus scrapes it every second and evaluates the shipped rules file, with only
 * keep_firing_for shortened to 1 min (signing-key-source pages on its first failing run:
 * `for: 0s`); Alertmanager (the example's grouping, group_wait 1s) delivers to a webhook
 * receiver in this test. A generated signing key pages; rewriting the log to an env-loaded key
 * resolves the page, keep_firing_for after the passing run.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { requireBinary } from '../helpers/binaries';
import { createWriteStream, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { z } from 'zod';
import { startDaemon, type Daemon } from '../../src/daemon';
import { silentLogger } from '../../src/core/logger';
import { defineCheck, type AnyCheck } from '../../src/core/define-check';
import { buildRegistry } from '../../src/core/registry';
import { registry as builtin } from '../../checks';
import { config, get, waitFor } from '../daemon/helpers';

const PROMETHEUS = '/usr/bin/prometheus';
const ALERTMANAGER = '/usr/bin/prometheus-alertmanager';

const CHECK = 'signing-key-source';
const ALERT = 'AegisComplianceSigningKeySourceFailing';

/**
 * The real check when it is registered; until then a minimal stand-in with the same id,
 * reading the same log lines through the same logs source (DESIGN.md's format).
 */
const standIn = defineCheck({
  meta: {
    id: CHECK,
    title: 'Signing keys of every audit process are loaded from env',
    description: 'Stand-in for the e2e test until checks/signing-key-source.ts is registered.',
    severity: 'critical',
    sources: ['logs'],
    schedule: '*/5 * * * *',
    checklist: [],
    runbook: `docs/runbooks/${CHECK}.md`,
    remediation: 'Provide the signing key in the environment and restart the audit service.',
  },
  messages: { generated: 'Instance {{instance}} generated its {{key}} key in memory.' },
  options: z.object({}),
  async run(ctx) {
    const logs = ctx.source('logs');
    const latest = new Map<string, Record<string, unknown>>();
    for await (const ev of logs.events('audit', { since: new Date(ctx.now().getTime() - logs.windowMs), event: 'signing_key_loaded', signal: ctx.signal })) {
      latest.set(`${String(ev.fields.instance)}/${String(ev.fields.key)}`, ev.fields);
    }
    for (const f of latest.values()) {
      if (f.source === 'generated') {
        ctx.report({ messageId: 'generated', data: { instance: String(f.instance), key: String(f.key) }, resource: `instance=${String(f.instance)},key=${String(f.key)}` });
      }
    }
  },
}) as unknown as AnyCheck;

interface WebhookAlert {
  status: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
}
interface WebhookPayload {
  version: string;
  status: string;
  receiver: string;
  alerts: WebhookAlert[];
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createNetServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

function logLine(source: 'env' | 'generated', key: 'receipt' | 'root'): string {
  return `${JSON.stringify({ ts: new Date().toISOString(), service: 'audit', instance: 'audit-1', event: 'signing_key_loaded', key, source })}\n`;
}

let dir: string;
let daemon: Daemon | undefined;
let webhook: Server | undefined;
const procs: ChildProcess[] = [];
const received: { at: number; body: WebhookPayload }[] = [];

async function stop(p: ChildProcess): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return;
  const exited = new Promise<void>((r) => p.once('exit', () => r()));
  p.kill('SIGTERM');
  const t = setTimeout(() => p.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(t);
}

afterAll(async () => {
  await Promise.all(procs.map(stop));
  await daemon?.close();
  await new Promise<void>((r) => (webhook ? webhook.close(() => r()) : r()));
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test(
  'a critical violation pages through Prometheus and Alertmanager, and its repair resolves the page',
  async () => {
    dir = mkdtempSync(join(tmpdir(), 'aegis-e2e-'));
    const logFile = join(dir, 'audit.jsonl');
    writeFileSync(logFile, logLine('env', 'receipt') + logLine('env', 'root'));

    // --- the auditor
    const real = builtin.get(CHECK);
    const registry = buildRegistry([real ?? standIn], 'e2e');
    // eslint-disable-next-line no-console
    console.log(`e2e uses the ${real ? 'registered' : 'stand-in'} ${CHECK} check`);
    const loaded = config(
      `deployment: e2e\nsources:\n  logs:\n    files: { audit: ${JSON.stringify(logFile)} }\nchecks:\n  ${CHECK}: { schedule: "* * * * * *" }\n`,
      registry,
      join(dir, 'audit.yaml'),
    );
    daemon = await startDaemon({ loaded, registry, listen: '127.0.0.1:0', logger: silentLogger(), maxRandomDelayMs: 0 });
    await daemon.ready;

    // --- the webhook receiver
    webhook = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        received.push({ at: Date.now(), body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as WebhookPayload });
        res.writeHead(200).end();
      });
    });
    await new Promise<void>((r) => webhook?.listen(0, '127.0.0.1', () => r()));
    const hookPort = (webhook.address() as AddressInfo).port;

    // --- Alertmanager
    const amPort = await freePort();
    writeFileSync(
      join(dir, 'am.yml'),
      stringify({
        route: { receiver: 'test-webhook', group_by: ['deployment', 'check'], group_wait: '1s', group_interval: '1s', repeat_interval: '1h' },
        receivers: [{ name: 'test-webhook', webhook_configs: [{ url: `http://127.0.0.1:${hookPort}/hook`, send_resolved: true }] }],
      }),
    );
    requireBinary(PROMETHEUS, 'prometheus');
    requireBinary(ALERTMANAGER, 'prometheus-alertmanager');
    const am = spawn(ALERTMANAGER, [
      `--config.file=${join(dir, 'am.yml')}`,
      `--storage.path=${join(dir, 'am')}`,
      `--web.listen-address=127.0.0.1:${amPort}`,
      '--cluster.listen-address=',
      '--log.level=warn',
    ], { stdio: ['ignore', 'ignore', 'pipe'] });
    am.stderr?.pipe(createWriteStream(join(dir, 'am.log')));
    procs.push(am);

    // --- Prometheus, with the shipped rules file, keep_firing_for shortened from 5m to 1m (as
    // `alerts/generate.mjs --keep-firing-for 1m` writes it) so the repair resolves within the test
    const shipped = readFileSync(join(__dirname, '..', '..', 'alerts', 'aegis-compliance.rules.yml'), 'utf8');
    const ours = parse(shipped) as { groups: { rules: { alert: string; for?: string; keep_firing_for?: string; labels?: Record<string, string> }[] }[] };
    const rule = ours.groups.flatMap((g) => g.rules).find((r) => r.alert === ALERT && r.labels?.check === CHECK);
    expect({ for: rule?.for, keep_firing_for: rule?.keep_firing_for }).toEqual({ for: '0s', keep_firing_for: '5m' });
    const KEEP_FIRING_MS = 60_000;
    const rulesFile = join(dir, 'aegis-compliance.rules.yml');
    writeFileSync(rulesFile, shipped.replace(/^(\s+keep_firing_for:) 5m$/gm, '$1 1m'));
    const used = parse(readFileSync(rulesFile, 'utf8')) as typeof ours;
    expect(used.groups.flatMap((g) => g.rules).find((r) => r.alert === ALERT && r.labels?.check === CHECK)?.keep_firing_for).toBe('1m');
    const promPort = await freePort();
    writeFileSync(
      join(dir, 'prom.yml'),
      stringify({
        global: { scrape_interval: '1s', evaluation_interval: '1s' },
        rule_files: [rulesFile],
        alerting: { alertmanagers: [{ static_configs: [{ targets: [`127.0.0.1:${amPort}`] }] }] },
        scrape_configs: [{ job_name: 'aegis-audit', static_configs: [{ targets: [daemon.address] }] }],
      }),
    );
    const prom = spawn(PROMETHEUS, [
      `--config.file=${join(dir, 'prom.yml')}`,
      `--storage.tsdb.path=${join(dir, 'tsdb')}`,
      `--web.listen-address=127.0.0.1:${promPort}`,
      '--log.level=warn',
    ], { stdio: ['ignore', 'ignore', 'pipe'] });
    prom.stderr?.pipe(createWriteStream(join(dir, 'prom.log')));
    procs.push(prom);
    // What a wait that timed out reports: each program's state and the end of its log.
    const state = (name: string, p: ChildProcess, log: string) => {
      const text = existsSync(log) ? readFileSync(log, 'utf8') : '';
      const st = p.exitCode !== null || p.signalCode !== null ? `exited (code ${p.exitCode}, signal ${p.signalCode})` : 'running';
      return `${name} ${st}; log: ${text.slice(-1_500) || '(empty)'}`;
    };
    const diag = (what: string) => () =>
      `${what}\n${state('Alertmanager', am, join(dir, 'am.log'))}\n${state('Prometheus', prom, join(dir, 'prom.log'))}\nwebhook received ${received.length} notification(s): ${JSON.stringify(received.map((r) => r.body.status))}`;

    const isReady = async (port: number) => {
      try {
        return (await get(`127.0.0.1:${port}`, '/-/ready')).status === 200;
      } catch {
        return false;
      }
    };
    await waitFor(() => isReady(amPort), diag('Alertmanager to be ready'), 90_000, 200);
    await waitFor(() => isReady(promPort), diag('Prometheus to be ready'), 90_000, 200);

    // Prometheus sees the check passing before the violation appears.
    const promQuery = async (q: string): Promise<number | undefined> => {
      const r = await get(`127.0.0.1:${promPort}`, `/api/v1/query?query=${encodeURIComponent(q)}`);
      const body = JSON.parse(r.body) as { data?: { result?: { value: [number, string] }[] } };
      const v = body.data?.result?.[0]?.value[1];
      return v === undefined ? undefined : Number(v);
    };
    await waitFor(async () => (await promQuery(`aegis_compliance_check_status{check="${CHECK}",status="pass"}`)) === 1, diag('Prometheus to scrape a passing check'), 90_000, 250);

    // --- the violation: the audit service restarts with a generated receipt key
    const violatedAt = Date.now();
    writeFileSync(logFile, logLine('generated', 'receipt') + logLine('env', 'root'), { flag: 'a' });
    const page = await waitFor(
      () => received.find((r) => r.body.status === 'firing' && r.body.alerts.some((a) => a.labels.alertname === ALERT)),
      diag('the page to reach the webhook'),
      90_000,
      50,
    );
    const pageLatency = page.at - violatedAt;
    const alert = page.body.alerts.find((a) => a.labels.alertname === ALERT) as WebhookAlert;
    expect(page.body.version).toBe('4');
    expect(alert.status).toBe('firing');
    // exactly these: the scrape target's instance and job are aggregated away (one alert whichever replica exports it)
    expect(alert.labels).toEqual({ alertname: ALERT, check: CHECK, severity: 'critical', check_severity: 'critical', deployment: 'e2e' });
    expect(alert.annotations.runbook_url).toBe(`docs/runbooks/${CHECK}.md`);
    expect(existsSync(join(__dirname, '..', '..', alert.annotations.runbook_url))).toBe(true);
    expect(alert.annotations.summary).toBe(`Compliance check ${CHECK} is failing`);
    expect(alert.annotations.description).toMatch(/reports 1 finding\(s\) in deployment e2e\. /);

    // --- the repair: a restart that loads both keys from env
    const repairedAt = Date.now();
    writeFileSync(logFile, logLine('env', 'receipt') + logLine('env', 'root'), { flag: 'a' });
    const resolved = await waitFor(
      () => received.find((r) => r.at >= repairedAt && r.body.status === 'resolved' && r.body.alerts.some((a) => a.labels.alertname === ALERT)),
      diag('the resolved notification'),
      KEEP_FIRING_MS + 90_000,
      50,
    );
    const resolveLatency = resolved.at - repairedAt;
    // kept firing for keep_firing_for after the passing run was scraped, then resolved
    expect(resolveLatency).toBeGreaterThanOrEqual(KEEP_FIRING_MS);
    expect(resolved.body.alerts.find((a) => a.labels.alertname === ALERT)?.labels).toMatchObject({ check: CHECK, severity: 'critical' });
    // eslint-disable-next-line no-console
    console.log(`violation -> webhook page: ${pageLatency} ms; repair -> resolved notification: ${resolveLatency} ms (scrape/eval 1s, shipped rules (for 0s) with keep_firing_for 1m, group_wait 1s)`);
  },
  480_000,
);
