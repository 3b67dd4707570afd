/**
 * The sandbox deployment's files: JSON-lines logs per service, dotenv env files, PEM key
 * files. Everything a secret goes into is recorded in a {@link SecretLedger} so a canary
 * test can search every output of the auditor for it.
 */
import { mkdir, rm, utimes, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { REPO_DIR } from './repo-tree';
import { DEPLOY_TREE } from './deploy-tree';
import { derivedBytes, Prng } from './prng';
import type { Ed25519KeyPair } from './keys';
import { DAY_MS, type Plan } from './plan';

const HOUR_MS = 3_600_000;
/** The model-signing key Aegis's code falls back to when none is set (a public string). */
const DEV_MODEL_SIGN_FALLBACK = ['dev', 'model', 'sign', 'key', 'change', 'me'].join('-');
const MIN_MS = 60_000;

/** Every secret value the sandbox wrote, in the forms a leak could take. */
export class SecretLedger {
  readonly #values = new Set<string>();

  add(value: string): void {
    if (value.length > 0) this.#values.add(value);
  }

  addKey(key: Ed25519KeyPair): void {
    this.add(key.privateKeyPem);
    const body = key.privateKeyPem.replace(/-----(BEGIN|END) PRIVATE KEY-----/g, '').replace(/\s+/g, '');
    this.add(body);
    this.add(key.seed.toString('base64'));
    this.add(key.seed.toString('hex'));
  }

  values(): string[] {
    return [...this.#values];
  }
}

// ------------------------------------------------------------------ logs

interface LogLine {
  at: number;
  text: string;
}

const HTTP_ROUTES = ['/v1/receipts', '/v1/policies/evaluate', '/healthz', '/v1/tokens', '/metrics'];
const AUTH_REASONS = ['invalid_token', 'expired_token', 'unknown_client', 'bad_signature'];

function json(obj: Record<string, unknown>): string {
  return JSON.stringify(obj);
}

/** Background noise of one instance: requests, a few non-JSON lines, JSON without a known event. */
function noise(prng: Prng, service: string, instance: string, from: number, to: number): LogLine[] {
  const out: LogLine[] = [];
  let t = from + prng.int(0, 20 * MIN_MS);
  while (t < to) {
    const ts = new Date(t).toISOString();
    const r = prng.next();
    if (r < 0.8) {
      out.push({ at: t, text: json({ ts, service, instance, event: 'http_request', method: prng.pick(['GET', 'POST']), route: prng.pick(HTTP_ROUTES), status: prng.pick([200, 200, 200, 201, 204, 404, 500]), ms: prng.int(1, 900) }) });
    } else if (r < 0.88) {
      out.push({ at: t, text: `Error: connect ECONNREFUSED 10.0.3.${prng.int(2, 250)}:6379` });
      out.push({ at: t, text: '    at TCPConnectWrap.afterConnect [as oncomplete] (node:net:1555:16)' });
    } else if (r < 0.94) {
      out.push({ at: t, text: json({ level: 'debug', msg: 'cache warm', service, instance }) }); // JSON without ts or event
    } else if (r < 0.97) {
      out.push({ at: t, text: '' });
    } else {
      out.push({ at: t, text: json({ ts, service, instance, event: 'config_reloaded', keys: prng.int(3, 40) }) });
    }
    t += prng.int(15 * MIN_MS, 45 * MIN_MS);
  }
  return out;
}

async function writeLog(dir: string, file: string, lines: LogLine[]): Promise<void> {
  lines.sort((a, b) => a.at - b.at);
  await writeFile(join(dir, file), lines.map((l) => l.text).join('\n') + '\n');
}

/** One log line bound for CloudWatch: its time, its text and its stream (the instance). */
export interface CloudLine {
  timestamp: number;
  message: string;
  stream: string;
}

export interface WrittenLogs {
  /** The glob per file-logged service, for audit.yaml. */
  files: Record<string, string>;
  /** The lines of the services that log to CloudWatch (plan.cloudLogServices), in time order. */
  cloud: Record<string, CloudLine[]>;
}

/**
 * Writes `logs/<service>/*.jsonl` for the file-logged services; the lines of the services
 * that log to CloudWatch are returned instead (the same lines, drawn the same way).
 */
export async function writeLogs(root: string, plan: Plan): Promise<WrittenLogs> {
  const { seed, services, signingService } = plan.opts;
  const now = plan.opts.now.getTime();
  const from = now - 7 * DAY_MS;
  const to = now - MIN_MS;
  const globs: Record<string, string> = {};
  const cloud: Record<string, CloudLine[]> = {};
  for (const service of services) {
    const toCloud = plan.cloudLogServices.includes(service);
    const dir = join(root, 'logs', service);
    if (!toCloud) {
      await mkdir(dir, { recursive: true });
      globs[service] = `logs/${service}/*.jsonl`;
    }
    const prng = new Prng(seed, `logs:${service}`);

    if (service === signingService) {
      for (const [index, inst] of plan.instances.entries()) {
        // File names come from the position, not the instance name, which may hold anything.
        const fileName = `${service}-${index + 1}`;
        const lines = noise(prng, service, inst.name, from, to);
        for (const start of inst.starts) {
          const at = start.at.getTime();
          const ts = (d: number) => new Date(at + d).toISOString();
          lines.push({ at, text: json({ ts: ts(0), service, instance: inst.name, event: 'service_started', version: '2.14.1' }) });
          lines.push({ at: at + 1, text: json({ ts: ts(2), service, instance: inst.name, event: 'signing_key_loaded', key: 'receipt', source: start.receipt }) });
          lines.push({ at: at + 2, text: json({ ts: ts(3), service, instance: inst.name, event: 'signing_key_loaded', key: 'root', source: start.root }) });
        }
        if (inst === plan.instances[1]) {
          // One enormous line (a dumped request body): readers must skip it, not choke on it.
          const body = 'A'.repeat(1024 * 1024 + 512);
          lines.push({ at: now - 30 * HOUR_MS, text: json({ ts: new Date(now - 30 * HOUR_MS).toISOString(), service, instance: inst.name, event: 'debug_dump', body }) });
        }
        if (inst === plan.instances[0]) {
          // Rotated: the older part of the first instance's log lives in a dated file.
          const cut = now - 3 * DAY_MS;
          const day = new Date(cut).toISOString().slice(0, 10).replace(/-/g, '');
          await writeLog(dir, `${fileName}-${day}.jsonl`, lines.filter((l) => l.at < cut));
          await writeLog(dir, `${fileName}.jsonl`, lines.filter((l) => l.at >= cut));
        } else {
          await writeLog(dir, `${fileName}.jsonl`, lines);
        }
      }
      continue;
    }

    const instanceCount = service === 'gateway' ? 2 : 1;
    for (let i = 1; i <= instanceCount; i++) {
      const name = `${service}-${i}`;
      const lines = noise(prng, service, name, from, to);
      if (service === 'gateway' || service === 'identity') {
        const failure = (at: number, client: string, reason: string) =>
          lines.push({ at, text: json({ ts: new Date(at).toISOString(), service, instance: name, event: 'auth_failure', reason, client }) });
        // A handful over the past days, and a trickle over the last four hours: at most one per
        // instance in any 15 minutes, so no window comes near a spike whatever "now" the audit picks.
        const n = prng.int(5, 9);
        for (let k = 0; k < n; k++) failure(now - 2 * DAY_MS - prng.int(0, 4 * DAY_MS), `203.0.113.${prng.int(1, 254)}`, prng.pick(AUTH_REASONS));
        for (let slot = now - 4 * HOUR_MS; slot < now - 15 * MIN_MS; slot += 15 * MIN_MS) {
          if (prng.chance(0.4)) failure(slot + prng.int(0, 15 * MIN_MS - 1), `198.51.100.${prng.int(1, 254)}`, prng.pick(AUTH_REASONS));
        }
        if (plan.selected.has('auth-failure-burst') && name === plan.burstInstance) {
          // One client hammering the gateway: 150 failures in the last ten minutes. No PRNG draw
          // here, so the rest of the logs stay byte-identical to the baseline's.
          for (let k = 0; k < 150; k++) failure(now - 10 * MIN_MS + Math.floor((k * 9 * MIN_MS) / 150), plan.burstClient, 'invalid_token');
        }
      }
      // The log violations: no PRNG draw, so the rest of the logs stay as in the baseline.
      if (name === plan.logLeaks.knownSecretInstance && plan.selected.has('log-known-secret')) {
        const at = now - 2 * HOUR_MS;
        const env = { NODE_ENV: 'production', SERVICE_NAME: service, INTERNAL_SECRET: plan.secrets.internal };
        lines.push({ at, text: json({ ts: new Date(at).toISOString(), service, instance: name, event: 'config_dump', level: 'debug', env }) });
      }
      if (name === plan.logLeaks.shapesInstance && plan.selected.has('log-secret-shapes')) {
        const { jwt, acpKey, awsKeyId } = plan.logLeaks.shapes;
        const at = now - 3 * HOUR_MS;
        const ts = (d: number) => new Date(at + d).toISOString();
        lines.push({ at, text: json({ ts: ts(0), service, instance: name, event: 'upstream_error', status: 502, request_headers: { authorization: `Bearer ${jwt}`, 'x-api-key': acpKey } }) });
        lines.push({ at: at + 1, text: `WARN boto3 credentials from environment: aws_access_key_id=${awsKeyId} (${ts(1)})` });
      }
      if (toCloud) {
        lines.sort((a, b) => a.at - b.at);
        (cloud[service] ??= []).push(...lines.map((l) => ({ timestamp: l.at, message: l.text, stream: name })));
      } else {
        await writeLog(dir, `${name}.jsonl`, lines);
      }
    }
  }
  return { files: globs, cloud };
}

// ------------------------------------------------------------------ env files

type Style = 'plain' | 'export' | 'single' | 'double';

function envLine(name: string, value: string, style: Style): string {
  switch (style) {
    case 'plain':
      return `${name}=${value}`;
    case 'export':
      return `export ${name}=${value}`;
    case 'single':
      return `${name}='${value}'`;
    case 'double':
      return `${name}="${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`;
  }
}

/** Writes `env/<service>.env` with mtimes from the plan; returns the path per service for audit.yaml. */
export async function writeEnvFiles(root: string, plan: Plan, ledger: SecretLedger): Promise<Record<string, string>> {
  const { seed, services, signingService, deployment } = plan.opts;
  const dir = join(root, 'env');
  await mkdir(dir, { recursive: true });
  const files: Record<string, string> = {};
  for (const service of services) {
    const secret = (label: string, bytes = 24) => {
      const v = derivedBytes(seed, `${service}:${label}`, bytes).toString('base64url');
      ledger.add(v);
      return v;
    };
    const dbPassword = secret('db-password', 18);
    const dbUrl = `postgres://${service}:${dbPassword}@db.internal:5432/aegis_${service}`;
    const redisToken = secret('redis-token', 18);
    const redisUrl = `rediss://:${redisToken}@cache.internal:6379/0`;
    // The URLs' secrets are their password and token (recorded above); the rest of a URL
    // (scheme, user, host) is not secret and would make every 8-character piece of
    // "postgres://" a false alarm in canary searches.
    const lines = [
      `# ${service} environment for the aegis sandbox deployment "${deployment}" (seed ${seed}). Generated; do not edit.`,
      'NODE_ENV=production',
      envLine('SERVICE_NAME', service, 'plain'),
      'LOG_LEVEL=info # debug in staging',
      '',
      envLine('DATABASE_URL', dbUrl, 'double'),
      envLine('REDIS_URL', redisUrl, 'plain'),
    ];
    const auth = plan.authEnv[service] ?? {};
    if (Object.keys(auth).length > 0) lines.push('', '# authentication (Runbook: Enforce Vault-backed secrets and OIDC/mTLS auth)', ...Object.entries(auth).map(([k, v]) => envLine(k, v, 'plain')));
    const internal = plan.internalSecretOf(service);
    if (internal !== undefined) {
      lines.push('# peer authentication, rotated quarterly', envLine('INTERNAL_SECRET', internal, 'export'));
      ledger.add(internal);
    }
    if (plan.roles.overlap === service && plan.selected.has('internal-secret-overlap-too-long')) {
      lines.push(envLine('INTERNAL_SECRET_PREVIOUS', plan.secrets.internalPrevious, 'plain'));
      ledger.add(plan.secrets.internalPrevious);
    }
    if (plan.jwtServices.includes(service)) {
      lines.push(envLine('JWT_SECRET_KEY', plan.secrets.jwt, 'single'));
      ledger.add(plan.secrets.jwt);
    }
    if (service === 'api') lines.push(envLine('SHODAN_API_KEY', secret('shodan', 24), 'plain'));
    if (service === plan.modelSignService) {
      // Aegis's model-signing key; the dev-fallback violation leaves it at the code's hard-coded fallback.
      const fallback = plan.selected.has('dev-fallback-secret');
      const value = fallback ? DEV_MODEL_SIGN_FALLBACK : secret('model-sign-key', 32);
      if (fallback) ledger.add(value);
      lines.push(envLine('AEGIS_MODEL_SIGN_KEY', value, 'plain'));
    }
    if (service === 'insight') {
      const groq = `gsk_${secret('groq', 30)}`;
      ledger.add(groq);
      lines.push(envLine('GROQ_API_KEY', groq, 'plain'));
    }
    if (service === signingService) {
      lines.push(
        '',
        '# ed25519 signing keys (PKCS#8 PEM); the PEM files under /data/keys are only the fallback',
        envLine('RECEIPT_SIGNING_PRIVATE_KEY', plan.configuredReceiptKey.privateKeyPem, 'double'),
        envLine('ROOT_SIGNING_PRIVATE_KEY', plan.rootKey.privateKeyPem, 'double'),
      );
    }
    const file = join(dir, `${service}.env`);
    await writeFile(file, lines.join('\n') + '\n', { mode: 0o600 });
    const mtime = plan.envMtime.get(service) ?? plan.opts.now;
    await utimes(file, mtime, mtime);
    files[service] = `env/${service}.env`;
  }
  for (const k of [...plan.receiptKeys, plan.undeployedReceiptKey, plan.rootKey]) ledger.addKey(k);
  return files;
}

/**
 * The PEM fallback location; returns its paths for audit.yaml. The services load their keys from
 * env, so the baseline leaves no key there. `receipt-key-not-deployed` writes the new receipt key
 * to the fallback path; `pem-file-left` leaves a backup of the first (now historical) receipt key.
 */
export async function writePemFiles(root: string, plan: Plan): Promise<{ receipt: string; root: string }> {
  const dir = join(root, 'keys');
  await mkdir(dir, { recursive: true });
  // A sandbox built again in the same folder (demo, then demo --violations none) keeps no key an earlier build left.
  const put = (name: string, pem: string | undefined) => (pem !== undefined ? writeFile(join(dir, name), pem, { mode: 0o600 }) : rm(join(dir, name), { force: true }));
  await put('receipt-signing.pem', plan.selected.has('receipt-key-not-deployed') ? plan.configuredReceiptKey.privateKeyPem : undefined);
  await put('receipt-signing.pem.bak', plan.selected.has('pem-file-left') ? plan.receiptKeys[0].privateKeyPem : undefined);
  return { receipt: 'keys/receipt-signing.pem', root: 'keys/root-signing.pem' };
}

// ------------------------------------------------------------------ deploy tree

/** The plan's deploy tree under `<root>/deploy`; its literal tokens go into the ledger. */
export async function writeDeployTree(root: string, plan: Plan, ledger: SecretLedger): Promise<void> {
  for (const t of plan.deployTree.secrets) ledger.add(t);
  for (const [rel, content] of Object.entries(plan.deployTree.files)) {
    const path = join(root, DEPLOY_TREE, rel);
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, content);
  }
}

/** The repository checkout: its secret-shaped tokens (and a pasted secret) go to the ledger. */
export async function writeRepoTree(root: string, plan: Plan, ledger: SecretLedger): Promise<void> {
  for (const t of plan.repoTree.secrets) ledger.add(t);
  for (const [rel, content] of Object.entries(plan.repoTree.files)) {
    const path = join(root, REPO_DIR, rel);
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, Buffer.from(content, rel.endsWith('.png') ? 'latin1' : 'utf8'));
  }
}
