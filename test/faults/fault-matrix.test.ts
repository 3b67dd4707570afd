/**
 * The fault matrix: each cloud source (SSM, CloudWatch Logs, Vault, Prometheus) × each fault
 * (connection refused, hang past the timeout, throttling, 403, 5xx, malformed body), through
 * the real pipeline (`runAudit`, and the CLI's `main` for the exit code) against the loopback
 * emulators and a small local Prometheus. Affected checks must be `error` with a message
 * naming the source and the fault; unaffected checks must still be evaluated; the exit code
 * is 3 when nothing failed. The observed matrix is written to test-output/fault-matrix.md.
 *
 * Every run doubles as a canary: a KnownSecrets that records but never scrubs is handed to the
 * run, so a seeded secret value (or an 8-character piece of one) reaching the report, the logs
 * or an error message is seen, not hidden by the last line of defence; and the search for
 * them is a plain substring search (test/helpers/canary.ts), never the product's scrubber.
 */
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { registry } from '../../checks';
import { loadConfig } from '../../src/config/load';
import { runAudit } from '../../src/app/audit';
import { main } from '../../src/cli';
import { createLogger } from '../../src/core/logger';
import { KnownSecrets } from '../../src/core/secret';
import type { CheckResult, Report } from '../../src/core/types';
import { startCloudSandbox, type CloudSandbox } from '../../src/sandbox/cloud';
import type { FaultKind } from '../../src/sandbox/emulators';
import { findLeaks } from '../helpers/canary';

const SOURCES = ['ssm', 'logs', 'vault', 'prometheus'] as const;
type Src = (typeof SOURCES)[number];
const FAULTS: FaultKind[] = ['refuse', 'hang', 'throttle', 'forbidden', 'server-error', 'malformed'];
const FAULT_LABEL: Record<FaultKind, string> = {
  refuse: 'connection refused',
  hang: 'hang past the timeout',
  throttle: 'throttling',
  forbidden: '403 / access denied',
  'server-error': '5xx',
  malformed: 'malformed body',
};
/** What the error message must say for each fault. */
const FAULT_TEXT: Record<FaultKind, RegExp> = {
  refuse: /connection refused/,
  hang: /timed out/,
  throttle: /throttled/,
  forbidden: /access denied/,
  'server-error': /server error|service unavailable/,
  malformed: /malformed response/,
};
/** The checks each source's failure must turn into `error`; every other check stays evaluated. */
const AFFECTED: Record<Src, string[]> = {
  // The SSM backend also feeds the secret store, which the drift check and the SSM check read.
  ssm: ['internal-secret-drift', 'ssm-persisted-secrets'],
  logs: ['signing-key-source'],
  // The Vault backend feeds the secret store too.
  vault: ['internal-secret-drift', 'runtime-secrets-present', 'ssm-persisted-secrets', 'vault-token-hygiene'],
  prometheus: ['auth-failure-spike'],
};
const CHECKS = ['auth-failure-spike', 'internal-secret-drift', 'runtime-secrets-present', 'signing-key-source', 'ssm-persisted-secrets', 'vault-token-hygiene'];
const SERVICES = ['identity', 'gateway', 'api', 'audit', 'insight'];
/**
 * The timeout of a source that hangs: short, since nothing ever answers it. A source that does
 * answer (refusing, throttling, 403, 5xx, malformed) gets the healthy timeout: with 400 ms, one
 * attempt on a loaded machine timed out before the emulator's 429 came back and the throttle row
 * read "timed out" (vault throttle, load 12).
 */
const TIMEOUT_MS = 400;
const HEALTHY_TIMEOUT_MS = 15_000;
type SourceName = (typeof SOURCES)[number];
const ATTEMPTS = 3;

// ---------------------------------------------------------------- a small local Prometheus

let promMode: FaultKind | 'ok' = 'ok';
let promRequests = 0;
const promSockets = new Set<Socket>();
const prom: Server = createServer((req, res: ServerResponse) => {
  promRequests++;
  const send = (status: number, body: string) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(body);
  };
  switch (promMode) {
    case 'hang':
      return;
    case 'refuse':
      req.socket.destroy();
      return;
    case 'throttle':
      return send(429, JSON.stringify({ status: 'error', errorType: 'too_many_requests', error: 'too many requests' }));
    case 'forbidden':
      return send(403, JSON.stringify({ status: 'error', errorType: 'forbidden', error: 'forbidden' }));
    case 'server-error':
      return send(500, JSON.stringify({ status: 'error', errorType: 'internal', error: 'internal error' }));
    case 'malformed':
      return send(200, '{"status":"success","data":{"resultType":"vec');
    default: {
      const t = new URL(req.url ?? '/', 'http://x').searchParams.get('time') ?? '0';
      return send(200, JSON.stringify({ status: 'success', data: { resultType: 'vector', result: [{ metric: {}, value: [Number(t), '3'] }] } }));
    }
  }
});
prom.on('connection', (s: Socket) => {
  promSockets.add(s);
  s.on('close', () => promSockets.delete(s));
});
let promUrl = '';
let promPort = 0;

async function promRefuse(on: boolean): Promise<void> {
  if (on) {
    await new Promise<void>((r) => {
      prom.close(() => r());
      prom.closeAllConnections();
    });
  } else {
    await new Promise<void>((r) => prom.listen(promPort, '127.0.0.1', () => r()));
  }
}

// ---------------------------------------------------------------- the deployment

let cloud: CloudSandbox;
const dir = mkdtempSync(join(tmpdir(), 'fault-matrix-'));
const configFiles: Partial<Record<SourceName | 'none' | `${SourceName}-hang`, string>> = {};
const seeded: string[] = [];

function secretsFor(): Record<string, Record<string, string>> {
  const internal = randomBytes(24).toString('base64url');
  const out: Record<string, Record<string, string>> = {};
  for (const s of SERVICES) out[s] = { INTERNAL_SECRET: internal };
  out.identity.JWT_SECRET_KEY = randomBytes(24).toString('hex');
  out.audit.RECEIPT_SIGNING_PRIVATE_KEY = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  return out;
}

function auditLogLines(now: number): string[] {
  const ts = new Date(now - 3_600_000).toISOString();
  return [
    'audit service starting (plain text banner)',
    ...(['receipt', 'root'] as const).map((key) => JSON.stringify({ ts, service: 'audit', instance: 'audit-1', event: 'signing_key_loaded', key, source: 'env' })),
  ];
}

beforeAll(async () => {
  await new Promise<void>((r) => prom.listen(0, '127.0.0.1', () => r()));
  const addr = prom.address();
  promPort = typeof addr === 'object' && addr ? addr.port : 0;
  promUrl = `http://127.0.0.1:${promPort}`;
  const now = Date.now();
  const secrets = secretsFor();
  cloud = await startCloudSandbox({ seed: 'faults', deployment: 'faults', services: SERVICES, secrets, logs: { audit: auditLogLines(now) }, dir, now: new Date(now) });
  seeded.push(...cloud.secretValues);
  const frag = cloud.configFragment;
  // Only a hanging source gets the short timeout: a healthy source, or one that answers with
  // its fault, on a loaded machine must not time out and muddy the matrix.
  const writeConfig = (faulted: SourceName | 'none', hang = false): string => {
    const t = (name: SourceName) => ({ timeout: hang && name === faulted ? TIMEOUT_MS : HEALTHY_TIMEOUT_MS, max_attempts: ATTEMPTS });
    const config = {
      deployment: 'faults',
      services: SERVICES,
      sources: {
        logs: { cloudwatch: { ...frag.logs.cloudwatch, ...t('logs') }, window: '24h' },
        secrets: { ssm: { ...frag.secrets.ssm, ...t('ssm') }, vault: { ...frag.secrets.vault, ...t('vault') } },
        prometheus: { url: promUrl, ...t('prometheus') },
      },
      checks: { 'auth-failure-spike': { options: { from: 'prometheus' } } },
      run: { concurrency: 4, timeout: '60s' },
      state: { dir: join(dir, 'state') },
      outputs: { dir: join(dir, 'reports'), formats: ['json'] },
    };
    // JSON is YAML.
    const file = join(dir, `audit.${faulted}${hang ? '-hang' : ''}.yaml`);
    writeFileSync(file, JSON.stringify(config, null, 2));
    return file;
  };
  configFiles.none = writeConfig('none');
  for (const src of SOURCES) {
    configFiles[src] = writeConfig(src);
    configFiles[`${src}-hang`] = writeConfig(src, true);
  }
});

afterAll(async () => {
  await cloud?.stop();
  await new Promise<void>((r) => {
    if (!prom.listening) return r();
    prom.close(() => r());
    prom.closeAllConnections();
  });
  for (const s of promSockets) s.destroy();
});

/** A KnownSecrets that records what the sources register but never scrubs: leaks stay visible. */
class RecordingSecrets extends KnownSecrets {
  override scrub(text: string): string {
    return text;
  }
}

/** No seeded secret value, nor any 8-character piece of one, in any of the outputs. */
function expectNoLeaks(outputs: [string, string][]): void {
  expect(seeded.length).toBeGreaterThan(3);
  expect(findLeaks(seeded, outputs).slice(0, 10)).toEqual([]);
}

/** Every file under a folder (the CLI run's reports, the state), as [path, text]. */
function filesUnder(d: string): [string, string][] {
  if (!existsSync(d)) return [];
  return readdirSync(d, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name))
    .map((f) => [f, readFileSync(f, 'utf8')]);
}

async function audit(faulted: SourceName | 'none' | `${SourceName}-hang`): Promise<{ report: Report; logs: string; known: RecordingSecrets }> {
  let logs = '';
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      logs += chunk.toString('utf8');
      cb();
    },
  });
  const known = new RecordingSecrets();
  const loaded = loadConfig(configFiles[faulted] as string, { registry });
  const report = await runAudit(loaded, registry, { only: CHECKS, knownSecrets: known, logger: createLogger({ level: 'debug', destination: sink, knownSecrets: known }) });
  return { report, logs, known };
}

async function inject(src: Src, fault: FaultKind): Promise<void> {
  if (src === 'prometheus') {
    if (fault === 'refuse') await promRefuse(true);
    promMode = fault;
    return;
  }
  const emu = src === 'ssm' ? cloud.emulators.ssm : src === 'logs' ? cloud.emulators.logs : cloud.emulators.vault;
  await emu.faults.inject(fault);
}

async function clear(src: Src, fault: FaultKind): Promise<void> {
  if (src === 'prometheus') {
    if (fault === 'refuse') await promRefuse(false);
    promMode = 'ok';
    return;
  }
  const emu = src === 'ssm' ? cloud.emulators.ssm : src === 'logs' ? cloud.emulators.logs : cloud.emulators.vault;
  await emu.faults.clear();
}

function requestsTo(src: Src): number {
  if (src === 'prometheus') return promRequests;
  const emu = src === 'ssm' ? cloud.emulators.ssm : src === 'logs' ? cloud.emulators.logs : cloud.emulators.vault;
  return emu.faults.requestCount();
}

function byCheck(report: Report): Map<string, CheckResult> {
  return new Map(report.results.map((r) => [r.check, r]));
}

const observed: { src: Src; fault: FaultKind; results: Map<string, CheckResult>; exit: number }[] = [];

describe('baseline: every source healthy', () => {
  test('all six checks pass against the emulators, and nothing secret leaks', async () => {
    const { report, logs, known } = await audit('none');
    const results = byCheck(report);
    expect(CHECKS.map((c) => [c, results.get(c)?.status, results.get(c)?.error])).toEqual(CHECKS.map((c) => [c, 'pass', null]));
    // The sources registered the values they read (SSM, Vault KV, the Vault token).
    expect(known.size).toBeGreaterThan(5);
    expectNoLeaks([
      ['report', JSON.stringify(report)],
      ['logs', logs],
    ]);
  });
});

describe.each(SOURCES.map((s) => [s] as const))('%s faults', (src) => {
  test.each(FAULTS.map((f) => [f] as const))('%s', async (fault) => {
    await inject(src, fault);
    const before = requestsTo(src);
    let report: Report;
    let logs: string;
    let exit: number;
    try {
      const config = fault === 'hang' ? (`${src}-hang` as const) : src;
      ({ report, logs } = await audit(config));
      const out = join(dir, 'cli', `${src}-${fault}`);
      mkdirSync(out, { recursive: true });
      const prevLevel = process.env.AEGIS_AUDIT_LOG_LEVEL;
      process.env.AEGIS_AUDIT_LOG_LEVEL = 'silent';
      try {
        exit = await main(['node', 'aegis-audit', 'run', '--config', configFiles[config] as string, '--out', out, '--checks', CHECKS.join(',')], { out: () => undefined, err: () => undefined });
      } finally {
        if (prevLevel === undefined) delete process.env.AEGIS_AUDIT_LOG_LEVEL;
        else process.env.AEGIS_AUDIT_LOG_LEVEL = prevLevel;
      }
      const cliReport = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')) as Report;
      expect(cliReport.summary.fail).toBe(0);
    } finally {
      await clear(src, fault);
    }
    const results = byCheck(report);
    observed.push({ src, fault, results, exit });
    const sourceName = src === 'logs' ? 'logs' : src;
    for (const c of CHECKS) {
      const r = results.get(c);
      if (AFFECTED[src].includes(c)) {
        expect({ check: c, status: r?.status, code: r?.errorCode }).toEqual({ check: c, status: 'error', code: 'AUDIT_ERR_SOURCE_UNAVAILABLE' });
        expect(r?.error).toMatch(new RegExp(`^${sourceName}: `));
        expect(r?.error).toMatch(FAULT_TEXT[fault]);
        expect(r?.sourceErrors?.[0]?.source).toBe(sourceName);
      } else {
        expect({ check: c, status: r?.status, error: r?.error }).toEqual({ check: c, status: 'pass', error: null });
      }
    }
    expect(report.summary.fail).toBe(0);
    expect(exit).toBe(3);
    // Throttling: the clients retried, then gave up (the SDK for AWS, our retry for Vault and Prometheus).
    if (fault === 'throttle') {
      const calls = requestsTo(src) - before;
      expect(calls % ATTEMPTS).toBe(0);
      expect(calls).toBeGreaterThanOrEqual(2 * ATTEMPTS); // runAudit and the CLI run each gave up after ATTEMPTS
    }
    expectNoLeaks([
      ['report', JSON.stringify(report)],
      ['logs', logs],
      ...filesUnder(join(dir, 'cli', `${src}-${fault}`)),
      ...filesUnder(join(dir, 'state')),
    ]);
  });
});

afterAll(() => {
  if (observed.length === 0) return;
  const rows = observed.map(({ src, fault, results, exit }) => {
    const errs = [...results.values()].filter((r) => r.status === 'error');
    const evaluated = [...results.values()].filter((r) => r.status === 'pass' || r.status === 'fail').map((r) => r.check);
    const msg = errs[0]?.error?.replace(/\|/g, '\\|') ?? '';
    return `| ${src} | ${FAULT_LABEL[fault]} | ${errs.map((e) => e.check).join(', ')} → error | ${msg} | ${evaluated.length} pass (${evaluated.join(', ')}) | ${exit} |`;
  });
  const md = [
    '# Fault matrix (observed by test/faults/fault-matrix.test.ts)',
    '',
    `Timeouts ${TIMEOUT_MS} ms for a hanging source (${HEALTHY_TIMEOUT_MS / 1000} s otherwise), ${ATTEMPTS} attempts per call. Unaffected checks are evaluated and pass; exit code of \`aegis-audit run\`.`,
    '',
    '| source | fault | affected checks | message (first affected check) | unaffected checks | exit |',
    '| --- | --- | --- | --- | --- | --- |',
    ...rows,
    '',
  ].join('\n');
  mkdirSync(join(__dirname, '..', '..', 'test-output'), { recursive: true });
  writeFileSync(join(__dirname, '..', '..', 'test-output', 'fault-matrix.md'), md);
});
