/**
 * A real ingress: Debian's nginx terminating mTLS in front of the sandbox's Aegis-like backend
 * (AUTH_MODE=mtls), probed by mtls-enforced through the real config loader and endpoints
 * source. Configured as the runbook says (ssl_verify_client on, only the verified CN forwarded)
 * the check passes; with `ssl_verify_client optional` and the client's own header passed
 * through, it fails naming the endpoint and the probe. nginx runs as a foreground master with
 * its own prefix, config, pid and temp paths in a test folder and is stopped by its pid; a
 * missing nginx fails the test with what to install.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { registry } from '../../checks';
import { loadConfig } from '../../src/config/load';
import { runAudit } from '../../src/app/audit';
import { identityCertificates, startBackend, type Listening } from '../../src/sandbox/identity';
import { requireBinary } from '../helpers/binaries';

const NGINX = '/usr/sbin/nginx';
const DAY = 86_400_000;
let dir: string;
let backend: Listening;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

function conf(port: number, variant: 'runbook' | 'optional-passthrough'): string {
  const p = (f: string) => join(dir, f);
  const verify = variant === 'runbook' ? 'on' : 'optional';
  const forward = variant === 'runbook' ? 'proxy_set_header x-ssl-client-cn $verified_cn;' : '# no proxy_set_header: the client\'s own x-ssl-client-cn passes through';
  return `daemon off;
master_process on;
worker_processes 1;
pid ${p('nginx.pid')};
error_log ${p('error.log')} info;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path ${p('tmp/body')};
  proxy_temp_path ${p('tmp/proxy')};
  fastcgi_temp_path ${p('tmp/fastcgi')};
  uwsgi_temp_path ${p('tmp/uwsgi')};
  scgi_temp_path ${p('tmp/scgi')};
  map $ssl_client_s_dn $ssl_cn { default ""; "~(^|,)CN=(?<cn>[^,]+)" $cn; }
  map $ssl_client_verify $verified_cn { default ""; SUCCESS $ssl_cn; }
  server {
    listen 127.0.0.1:${port} ssl;
    ssl_certificate ${p('server.crt')};
    ssl_certificate_key ${p('server.key')};
    ssl_client_certificate ${p('ca.pem')};
    ssl_verify_client ${verify};
    location / {
      proxy_pass ${backend.url};
      ${forward}
    }
  }
}
`;
}

async function waitForPort(port: number, child: ChildProcess): Promise<void> {
  // A functional bound: nginx starts in milliseconds, but a loaded CI machine may take seconds.
  const until = Date.now() + 60_000;
  while (Date.now() < until) {
    if (child.exitCode !== null) break;
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  let log = '';
  try {
    log = readFileSync(join(dir, 'error.log'), 'utf8').slice(-2000);
  } catch {
    // no log written
  }
  throw new Error(`nginx did not listen on 127.0.0.1:${port} (exit ${child.exitCode}); error.log:\n${log}`);
}

async function withNginx<T>(variant: 'runbook' | 'optional-passthrough', fn: (port: number) => Promise<T>): Promise<T> {
  const port = await freePort();
  const file = join(dir, `nginx-${variant}.conf`);
  writeFileSync(file, conf(port, variant));
  const child = spawn(NGINX, ['-p', `${dir}/`, '-c', file, '-e', join(dir, 'error.log')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  try {
    await waitForPort(port, child).catch((e: Error) => {
      throw new Error(`${e.message}\nstderr: ${stderr}`);
    });
    return await fn(port);
  } finally {
    if (child.exitCode === null && child.pid) {
      const exited = new Promise((r) => child.once('exit', r));
      process.kill(child.pid, 'SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
    }
  }
}

function auditYaml(port: number): string {
  const path = join(dir, `audit-${port}.yaml`);
  writeFileSync(
    path,
    `deployment: nginx-e2e
services: [api]
sources:
  endpoints:
    ca_file: ca.pem
    client_cert_file: auditor.crt
    client_key_file: auditor.key
    unenrolled_cert_file: unenrolled.crt
    unenrolled_key_file: unenrolled.key
    timeout: 15s
    targets:
      ingress: { url: "https://127.0.0.1:${port}/v1/predict", service: api, probes: [mtls] }
outputs: { dir: reports }
`,
  );
  return path;
}

beforeAll(async () => {
  requireBinary(NGINX, 'nginx');
  dir = mkdtempSync(join(tmpdir(), 'nginx-mtls-'));
  for (const t of ['body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) mkdirSync(join(dir, 'tmp', t), { recursive: true });
  const now = Date.now();
  const certs = await identityCertificates('e2e', now);
  const [server, auditor, unenrolled] = await Promise.all([
    certs.server('api.e2e.aegis.internal', new Date(now - 10 * DAY), new Date(now + 20 * DAY)),
    certs.client('svc-auditor', new Date(now - 5 * DAY), new Date(now + 25 * DAY)),
    certs.client('svc-stranger', new Date(now - 5 * DAY), new Date(now + 25 * DAY)),
  ]);
  const files: Record<string, string> = {
    'ca.pem': certs.ca.certPem,
    'server.crt': server.certPem,
    'server.key': server.keyPem,
    'auditor.crt': auditor.certPem,
    'auditor.key': auditor.keyPem,
    'unenrolled.crt': unenrolled.certPem,
    'unenrolled.key': unenrolled.keyPem,
  };
  for (const [f, text] of Object.entries(files)) writeFileSync(join(dir, f), text, { mode: 0o600 });
  backend = await startBackend({ mode: 'mtls', enrolled: ['svc-auditor', 'client-b'] });
}, 180_000);

afterAll(async () => {
  await backend?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('nginx configured as the runbook says: every mTLS probe passes', async () => {
  await withNginx('runbook', async (port) => {
    const report = await runAudit(loadConfig(auditYaml(port), { registry }), registry, { only: ['mtls-enforced'] });
    const r = report.results[0];
    expect({ status: r.status, error: r.error, findings: r.findings.map((f) => f.resource) }).toEqual({ status: 'pass', error: null, findings: [] });
    expect(r.measurements).toContainEqual(expect.objectContaining({ name: 'mtls_probes', value: 5 }));
  });
}, 180_000);

test('ssl_verify_client optional with the header passed through: fails, naming the endpoint and the probe', async () => {
  await withNginx('optional-passthrough', async (port) => {
    const report = await runAudit(loadConfig(auditYaml(port), { registry }), registry, { only: ['mtls-enforced'] });
    const r = report.results[0];
    expect(r.status).toBe('fail');
    // Without proxy_set_header nginx forwards no verified CN either: the enrolled client arrives
    // without identity (401), and so does the unenrolled one (401, not 403).
    expect(r.findings.map((f) => `${f.severity} ${f.resource}`).sort()).toEqual([
      'critical endpoint=ingress,probe=forged-header',
      'high endpoint=ingress,probe=enrolled',
      'high endpoint=ingress,probe=no-cert',
      'medium endpoint=ingress,probe=unenrolled',
    ]);
    const forged = r.findings.find((f) => f.resource.endsWith('forged-header'));
    expect(forged?.message).toBe(
      `ingress (https://127.0.0.1:${port}/v1/predict): probe forged-header (a request without a client certificate carrying a forged x-ssl-client-cn header) was admitted with HTTP 200. The identity header reaches the application unverified: anyone can claim any enrolled client.`,
    );
    // optional still refuses a certificate from an untrusted CA with 400: that probe passes.
    expect(r.findings.some((f) => f.resource.endsWith('untrusted-ca'))).toBe(false);
  });
}, 180_000);
