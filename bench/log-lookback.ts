/**
 * What a 30-day lookback costs: signing-key-source's first run (which reads the whole
 * lookback) and a later run (which reads only what was logged since), over JSON-lines files
 * and over CloudWatch Logs (the loopback emulator in a child process, through the real SDK).
 *
 *   npm run build && node dist/bench/log-lookback.js [lines=1000000] [files|cloudwatch|both]
 *
 * `lines` are spread over 30 days and three instances (one file / stream each); the audit
 * service restarts every few days. Prints, per run: wall time, lines the source read, events
 * that matched, and the peak RSS and heap of this process (the emulator's memory is its own).
 * For files, also a full unfiltered stream of every line (how a secrets scan reads), to show
 * memory stays flat however large the files are.
 */
import { fork } from 'node:child_process';
import { createWriteStream, mkdtempSync, rmSync, appendFileSync } from 'node:fs';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import check from '../checks/signing-key-source';
import { runCheck } from '../src/core/runner';
import { Fingerprinter, KnownSecrets } from '../src/core/secret';
import { silentLogger } from '../src/core/logger';
import type { LogSource } from '../src/core/sources';
import { FileLogSource } from '../src/sources/log-files';
import { CloudWatchLogSource } from '../src/sources/cloudwatch-logs';
import { FileStateStore } from '../src/sources/state';
import { logsSchema } from '../src/config/schema';
import { LogsEmulator } from '../src/sandbox/emulators';

const DAY = 86_400_000;
const INSTANCES = ['audit-1', 'audit-2', 'audit-3'];

/**
 * The lines of one instance, in time order: requests, and a start (two key loads) every 4
 * days; audit-2 last started 12-13 days ago, on the PEM fallback (the one finding).
 */
function* instanceLines(instance: string, n: number, now: number): Generator<{ ts: number; text: string }> {
  const from = now - 30 * DAY + 60_000;
  const step = (30 * DAY - 120_000) / n;
  let nextStart = from + INSTANCES.indexOf(instance) * DAY;
  for (let i = 0; i < n; i++) {
    const ts = Math.floor(from + i * step);
    if (ts >= nextStart) {
      const last = instance === 'audit-2' && nextStart > now - 14 * DAY;
      for (const key of ['receipt', 'root']) {
        yield { ts, text: JSON.stringify({ ts: new Date(ts).toISOString(), service: 'audit', instance, event: 'signing_key_loaded', key, source: last ? 'file' : 'env' }) };
      }
      nextStart = last ? Infinity : nextStart + 4 * DAY;
    }
    yield {
      ts,
      text: JSON.stringify({ ts: new Date(ts).toISOString(), service: 'audit', instance, event: 'http_request', method: 'POST', route: '/v1/receipts', status: 200, ms: i % 900, request_id: `r-${i.toString(36)}` }),
    };
  }
}

interface Figures {
  ms: number;
  rssMb: number;
  heapMb: number;
}

async function measure<T>(fn: () => Promise<T>): Promise<[T, Figures]> {
  global.gc?.();
  let rss = process.memoryUsage().rss;
  let heap = process.memoryUsage().heapUsed;
  const timer = setInterval(() => {
    const m = process.memoryUsage();
    rss = Math.max(rss, m.rss);
    heap = Math.max(heap, m.heapUsed);
  }, 20);
  const t0 = process.hrtime.bigint();
  try {
    const out = await fn();
    const m = process.memoryUsage();
    return [out, { ms: Number(process.hrtime.bigint() - t0) / 1e6, rssMb: Math.max(rss, m.rss) / 1048576, heapMb: Math.max(heap, m.heapUsed) / 1048576 }];
  } finally {
    clearInterval(timer);
  }
}

async function runOnce(logs: LogSource, state: FileStateStore, now: Date) {
  const result = await runCheck(
    { check, options: check.options.parse({}), timeoutMs: 30 * 60_000 },
    {
      deployment: 'bench',
      services: ['audit'],
      sources: { logs },
      state,
      fingerprinter: new Fingerprinter(),
      knownSecrets: new KnownSecrets(),
      logger: silentLogger(),
      now: () => now,
    },
  );
  if (result.status === 'error') throw new Error(`signing-key-source: ${result.error}`);
  return result;
}

function line(label: string, f: Figures, extra: string): void {
  console.log(`${label.padEnd(34)} ${f.ms.toFixed(0).padStart(7)} ms  peak rss ${f.rssMb.toFixed(0).padStart(4)} MiB  heap ${f.heapMb.toFixed(0).padStart(4)} MiB  ${extra}`);
}

async function benchFiles(n: number, dir: string): Promise<void> {
  const now = Date.now();
  const logDir = join(dir, 'logs');
  const { mkdirSync, statSync } = await import('node:fs');
  mkdirSync(logDir, { recursive: true });
  let bytes = 0;
  for (const inst of INSTANCES) {
    const out = createWriteStream(join(logDir, `${inst}.jsonl`));
    for (const l of instanceLines(inst, Math.floor(n / INSTANCES.length), now)) {
      if (!out.write(l.text + '\n')) await once(out, 'drain');
    }
    out.end();
    await once(out, 'finish');
    bytes += statSync(join(logDir, `${inst}.jsonl`)).size;
  }
  console.log(`files: ${n} lines over 30 days in ${INSTANCES.length} files, ${(bytes / 1048576).toFixed(0)} MiB`);
  const glob = join(logDir, '*.jsonl');
  const state = new FileStateStore(join(dir, 'state'));

  const first = new FileLogSource({ audit: glob }, DAY);
  const [r1, f1] = await measure(() => runOnce(first, state, new Date(now)));
  line('first run (reads the lookback)', f1, `${first.stats().linesRead} lines read, ${r1.findings.length} finding(s)`);

  // A thousand new lines, with a restart among them.
  const later = now + 60_000;
  const more = [...instanceLines('audit-1', 1000, later)].slice(-1000).map((l) => l.text);
  more.push(JSON.stringify({ ts: new Date(later).toISOString(), service: 'audit', instance: 'audit-1', event: 'signing_key_loaded', key: 'receipt', source: 'env' }));
  appendFileSync(join(logDir, 'audit-1.jsonl'), more.join('\n') + '\n');
  const second = new FileLogSource({ audit: glob }, DAY);
  const [, f2] = await measure(() => runOnce(second, state, new Date(later)));
  line('next run (+1001 lines)', f2, `${second.stats().linesRead} lines read`);

  const third = new FileLogSource({ audit: glob }, DAY);
  const [, f3] = await measure(() => runOnce(third, state, new Date(later + 60_000)));
  line('next run (nothing new)', f3, `${third.stats().linesRead} lines read`);

  const full = new FileLogSource({ audit: glob }, DAY);
  const [count, f4] = await measure(async () => {
    let c = 0;
    for await (const ev of full.events('audit', { since: new Date(now - 30 * DAY) })) if (ev) c++;
    return c;
  });
  line('full stream, no event filter', f4, `${count} events, in time order across files`);
}

async function benchCloudWatch(n: number): Promise<void> {
  const now = Date.now();
  const child = fork(__filename, ['serve', String(n), String(now)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  try {
    const url = await new Promise<string>((resolve, reject) => {
      child.once('message', (m) => resolve(String(m)));
      child.once('exit', (code) => reject(new Error(`emulator exited ${code}`)));
    });
    process.env.BENCH_AWS_KEY = 'AKIDBENCH';
    process.env.BENCH_AWS_SECRET = 'bench-secret';
    const cfg = logsSchema.parse({
      cloudwatch: { region: 'us-east-1', endpoint: url, credentials_env: { access_key_id: 'BENCH_AWS_KEY', secret_access_key: 'BENCH_AWS_SECRET' }, groups: { audit: '/aegis/bench/audit' }, timeout: '10m' },
    });
    const dir = mkdtempSync(join(tmpdir(), 'bench-cw-state-'));
    const state = new FileStateStore(dir);
    console.log(`cloudwatch: ${n} events over 30 days in ${INSTANCES.length} streams (emulator in a child process)`);
    const calls = () => new Promise<number>((resolve) => {
      child.once('message', (m) => resolve(Number(m)));
      child.send('calls');
    });
    const first = new CloudWatchLogSource(cfg.cloudwatch!, DAY);
    const c0 = await calls();
    const [r1, f1] = await measure(() => runOnce(first, state, new Date(now)));
    const c1 = await calls();
    line('first run (reads the lookback)', f1, `${c1 - c0} FilterLogEvents calls, ${first.stats().linesRead} events on the wire, ${r1.findings.length} finding(s)`);
    first.close();
    const second = new CloudWatchLogSource(cfg.cloudwatch!, DAY);
    const [, f2] = await measure(() => runOnce(second, state, new Date(Date.now())));
    const c2 = await calls();
    line('next run', f2, `${c2 - c1} FilterLogEvents calls, ${second.stats().linesRead} events on the wire`);
    second.close();
    rmSync(dir, { recursive: true, force: true });
  } finally {
    child.kill();
  }
}

async function serve(n: number, now: number): Promise<void> {
  const emu = new LogsEmulator();
  emu.createLogGroup('/aegis/bench/audit', now - 40 * DAY);
  for (const inst of INSTANCES) {
    let batch: { timestamp: number; message: string }[] = [];
    for (const l of instanceLines(inst, Math.floor(n / INSTANCES.length), now)) {
      batch.push({ timestamp: l.ts, message: l.text });
      if (batch.length === 10_000) {
        emu.putEvents('/aegis/bench/audit', inst, batch);
        batch = [];
      }
    }
    emu.putEvents('/aegis/bench/audit', inst, batch);
  }
  const running = await emu.start();
  process.on('message', (m) => {
    if (m === 'calls') process.send?.(emu.faults.requestCount('FilterLogEvents'));
  });
  process.send?.(running.url);
}

async function main(): Promise<void> {
  if (process.argv[2] === 'serve') return serve(Number(process.argv[3]), Number(process.argv[4]));
  const n = Number(process.argv[2] ?? 1_000_000);
  const which = process.argv[3] ?? 'both';
  if (!Number.isInteger(n) || n < 1000) throw new Error(`lines must be an integer of at least 1000, got ${process.argv[2]}`);
  const dir = mkdtempSync(join(tmpdir(), 'bench-lookback-'));
  try {
    if (which === 'files' || which === 'both') await benchFiles(n, dir);
    if (which === 'cloudwatch' || which === 'both') await benchCloudWatch(n);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
