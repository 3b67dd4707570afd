/**
 * secrets-in-logs throughput: one core, a log file of the given size (JSON lines with some
 * plain-text lines), the given number of known secrets, a few of them and a few secret
 * shapes planted. Runs the real check (file log source, checkpoint in memory) and prints
 * MB/s, the findings, and the process's peak memory.
 *
 *   npm run build && node dist/bench/secrets-in-logs.js [megabytes=1024] [secrets=1000] [dir]
 *
 * The log file is written by a child process (so the figures are the scan's alone) to a
 * temporary folder (or `dir`) and removed afterwards. Memory is the scanning process's peak
 * RSS; MB per CPU-second is the one-core figure when other work shares the machine.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import check from '../checks/secrets-in-logs';
import { runCheck } from '../src/core/runner';
import { Fingerprinter, KnownSecrets, Secret } from '../src/core/secret';
import { silentLogger } from '../src/core/logger';
import { FileLogSource } from '../src/sources/log-files';
import type { SecretHolder, SecretStore, StateRead, StateStore } from '../src/core/sources';

const MB = 1024 * 1024;

class Store implements SecretStore {
  constructor(private readonly list: SecretHolder[]) {}
  services(): string[] {
    return ['bench'];
  }
  providers(): ['env_file'] {
    return ['env_file'];
  }
  async holders(name: string): Promise<SecretHolder[]> {
    return this.list.filter((h) => h.name === name);
  }
  async all(): Promise<SecretHolder[]> {
    return this.list;
  }
  async signingKeys(): Promise<never[]> {
    return [];
  }
  async privateKeyFiles(): Promise<never[]> {
    return [];
  }
}

class Memory implements StateStore {
  readonly #m = new Map<string, string>();
  async read<T>(k: string): Promise<StateRead<T>> {
    const v = this.#m.get(k);
    return v === undefined ? { status: 'absent' } : { status: 'ok', value: JSON.parse(v) as T };
  }
  async get<T>(k: string): Promise<T | undefined> {
    const r = await this.read<T>(k);
    return r.status === 'ok' ? r.value : undefined;
  }
  async set<T>(k: string, v: T): Promise<void> {
    this.#m.set(k, JSON.stringify(v));
  }
}

async function writeLog(file: string, bytes: number, plant: string[]): Promise<void> {
  const out = createWriteStream(file, { highWaterMark: 4 * MB });
  const routes = ['/v1/receipts', '/v1/policies/evaluate', '/healthz', '/v1/tokens'];
  let written = 0;
  let i = 0;
  const plantEvery = Math.max(1, Math.floor(bytes / 300 / Math.max(1, plant.length)));
  let lines: string[] = [];
  while (written < bytes) {
    const ts = new Date(1_790_000_000_000 + i * 37).toISOString();
    let line: string;
    if (i % plantEvery === plantEvery - 1 && plant.length > 0) {
      line = JSON.stringify({ ts, service: 'api', event: 'debug', detail: `value ${plant[(i / plantEvery) % plant.length | 0]} end` });
    } else if (i % 17 === 0) {
      line = `Error: connect ECONNREFUSED 10.0.3.${i % 250}:6379 at TCPConnectWrap.afterConnect [as oncomplete] (node:net:1555:16) request=${randomBytes(6).toString('hex')}`;
    } else {
      line = JSON.stringify({ ts, service: 'api', instance: 'api-1', event: 'http_request', method: i % 3 ? 'GET' : 'POST', route: routes[i % 4], status: 200, ms: i % 900, request_id: randomBytes(8).toString('hex'), user_agent: 'aegis-sdk/2.14.1 (python 3.12)' });
    }
    lines.push(line);
    written += Buffer.byteLength(line) + 1;
    i++;
    if (lines.length >= 4096) {
      if (!out.write(lines.join('\n') + '\n')) await new Promise<void>((r) => out.once('drain', () => r()));
      lines = [];
    }
  }
  out.write(lines.join('\n') + '\n');
  await new Promise<void>((resolve, reject) => out.end((e?: Error | null) => (e ? reject(e) : resolve())));
}

async function main(): Promise<void> {
  if (process.argv[2] === '--write') {
    await writeLog(process.argv[3], Number(process.argv[4]) * MB, JSON.parse(process.argv[5]) as string[]);
    return;
  }
  const megabytes = Number(process.argv[2] ?? 1024);
  const count = Number(process.argv[3] ?? 1000);
  if (!(megabytes > 0) || !Number.isInteger(count) || count < 0) throw new Error('usage: secrets-in-logs [megabytes] [secrets]');
  const dir = mkdtempSync(join(process.argv[4] ?? tmpdir(), 'bench-secrets-'));
  try {
    const holders: SecretHolder[] = [];
    for (let i = 0; i < count; i++) {
      const value = randomBytes(18 + (i % 30)).toString(i % 2 ? 'base64url' : 'hex');
      holders.push({ service: 'bench', name: `SECRET_${i}`, provider: 'env_file', origin: 'bench', value: new Secret(value) });
    }
    const jwt = ['eyJhbGciOiJIUzI1NiJ9', Buffer.from('{"sub":"bench"}').toString('base64url'), randomBytes(32).toString('base64url')].join('.');
    const plant = [holders[7]?.value.reveal(), holders[500]?.value.reveal(), `Bearer ${jwt}`, `AKIA${randomBytes(8).toString('hex').toUpperCase()}`].filter((x): x is string => !!x);
    const file = join(dir, 'api.jsonl');
    process.stdout.write(`writing ${megabytes} MB of log lines… `);
    execFileSync(process.execPath, [__filename, '--write', file, String(megabytes), JSON.stringify(plant)], { stdio: 'inherit' });
    console.log('done');

    const logs = new FileLogSource({ api: file }, 86_400_000);
    const t0 = process.hrtime.bigint();
    const cpu0 = process.cpuUsage();
    const result = await runCheck(
      { check, options: check.options.parse({}), timeoutMs: 3_600_000 },
      {
        deployment: 'bench',
        services: ['api'],
        sources: { logs, secrets: new Store(holders) },
        state: new Memory(),
        fingerprinter: new Fingerprinter(),
        knownSecrets: new KnownSecrets(),
        logger: silentLogger(),
        now: () => new Date(),
      },
    );
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    const cpu = process.cpuUsage(cpu0);
    const scanned = result.measurements?.find((m) => m.name === 'log_bytes_scanned')?.value ?? 0;
    console.log(`status: ${result.status}${result.error ? ` (${result.error})` : ''}; findings: ${result.findings.length}`);
    for (const f of result.findings) console.log(`  ${f.resource.replace(file, '<log>')}`);
    console.log(`known secrets: ${count}; scanned: ${(scanned / MB).toFixed(0)} MB in ${seconds.toFixed(2)} s (cpu ${((cpu.user + cpu.system) / 1e6).toFixed(2)} s)`);
    console.log(`throughput: ${(scanned / MB / seconds).toFixed(1)} MB/s wall; ${(scanned / MB / ((cpu.user + cpu.system) / 1e6)).toFixed(1)} MB per CPU-second`);
    const mem = process.memoryUsage();
    console.log(`memory: peak RSS ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MB; heap used now ${(mem.heapUsed / MB).toFixed(0)} MB`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
