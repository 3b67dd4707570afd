/**
 * repo-secret-scan throughput: a repository checkout of the given size (source-like text in
 * many small files and a few large ones, a .git folder and binary files that are skipped),
 * the given number of known secrets, a detect-secrets baseline with reviewed false positives,
 * and a few planted secrets. Runs the real check over the real source (files streamed from
 * disk) and prints MB/s, files/s, the findings, and the process's peak memory.
 *
 *   npm run build && node dist/bench/repo-secret-scan.js [megabytes=256] [secrets=1000] [dir]
 *
 * The tree is written by a child process (so the figures are the scan's alone) to a temporary
 * folder (or `dir`) and removed afterwards. The first pass reads from the page cache as a
 * repeated daemon run does; MB per CPU-second is the one-core figure.
 */
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import check from '../checks/repo-secret-scan';
import { repoSchema } from '../src/config/schema';
import { runCheck } from '../src/core/runner';
import { Fingerprinter, KnownSecrets, Secret } from '../src/core/secret';
import { silentLogger } from '../src/core/logger';
import { FsRepoSource } from '../src/sources/repo-files';
import type { SecretHolder, SecretStore, StateRead, StateStore } from '../src/core/sources';

const MB = 1024 * 1024;
const sha1 = (s: string) => createHash('sha1').update(s).digest('hex');

const secretStore = (list: SecretHolder[]): SecretStore => ({
  services: () => ['bench'],
  providers: () => ['env_file'],
  holders: async (name) => list.filter((h) => h.name === name),
  all: async () => list,
  signingKeys: async () => [],
  privateKeyFiles: async () => [],
});

const noState: StateStore = {
  read: async <T>(): Promise<StateRead<T>> => ({ status: 'absent' }),
  get: async () => undefined,
  set: async () => undefined,
};

/** Python-ish source text: identifiers, strings, hex ids, comments — no secret shapes. */
function sourceText(bytes: number, seed: number): string {
  const words = ['request', 'receipt', 'policy', 'evaluate', 'tenant', 'client', 'config', 'settings', 'signature', 'verify', 'payload', 'logger', 'handler'];
  const lines: string[] = [];
  let n = 0;
  for (let i = 0; n < bytes; i++) {
    const w = (k: number) => words[(i * 7 + k * 3 + seed) % words.length];
    const line =
      i % 9 === 0
        ? `# ${w(0)} ${w(1)} ${w(2)}: see docs/${w(3)}.md`
        : i % 5 === 0
          ? `    ${w(0)}_id = "${randomBytes(8).toString('hex')}"`
          : `    result = ${w(0)}.${w(1)}(${w(2)}=${w(3)}, timeout=${i % 60}, retries=${i % 5})`;
    lines.push(line);
    n += line.length + 1;
  }
  return lines.join('\n') + '\n';
}

function writeTree(root: string, megabytes: number, plant: string[]): void {
  const total = megabytes * MB;
  let written = 0;
  let i = 0;
  // A few large generated files (a quarter of the bytes), the rest in 2–40 KB source files.
  const large = Math.max(1, Math.floor(total / 4 / (8 * MB)));
  for (let k = 0; k < large; k++) {
    const text = sourceText(Math.min(8 * MB, total / 4), k);
    writeFileSync(join(root, `generated_${k}.py`), text);
    written += text.length;
  }
  while (written < total) {
    const dir = join(root, 'aegis', `pkg${i % 40}`);
    mkdirSync(dir, { recursive: true });
    let text = sourceText(2048 + ((i * 7919) % 38_000), i);
    if (i % 997 === 3 && plant.length > 0) text += `FALLBACK = "${plant[((i / 997) | 0) % plant.length]}"\n`;
    writeFileSync(join(dir, `mod_${i}.py`), text);
    written += text.length;
    i++;
  }
  mkdirSync(join(root, '.git', 'objects'), { recursive: true });
  writeFileSync(join(root, '.git', 'objects', 'pack.pack'), randomBytes(4 * MB));
  writeFileSync(join(root, 'logo.png'), Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0, 0, 0, 13]), randomBytes(MB)]));
}

async function main(): Promise<void> {
  if (process.argv[2] === '--write') {
    writeTree(process.argv[3], Number(process.argv[4]), JSON.parse(process.argv[5]) as string[]);
    return;
  }
  const megabytes = Number(process.argv[2] ?? 256);
  const count = Number(process.argv[3] ?? 1000);
  if (!(megabytes > 0) || !Number.isInteger(count) || count < 0) throw new Error('usage: repo-secret-scan [megabytes] [secrets] [dir]');
  const dir = mkdtempSync(join(process.argv[4] ?? tmpdir(), 'bench-repo-'));
  try {
    const holders: SecretHolder[] = [];
    for (let i = 0; i < count; i++) {
      const value = randomBytes(18 + (i % 30)).toString(i % 2 ? 'base64url' : 'hex');
      holders.push({ service: 'bench', name: `SECRET_${i}`, provider: 'env_file', origin: 'bench', value: new Secret(value) });
    }
    const awsId = `AKIA${randomBytes(8).toString('hex').toUpperCase()}`;
    const plant = [holders[7]?.value.reveal(), holders[500]?.value.reveal(), awsId].filter((x): x is string => !!x);
    process.stdout.write(`writing a ${megabytes} MB checkout… `);
    execFileSync(process.execPath, [__filename, '--write', dir, String(megabytes), JSON.stringify(plant)], { stdio: 'inherit' });
    // The AWS key id is a reviewed false positive wherever the baseline says so (here: nowhere, so it is found).
    writeFileSync(join(dir, '.secrets.baseline'), JSON.stringify({ version: '1.5.0', plugins_used: [], filters_used: [], results: { 'docs/x.md': [{ type: 'AWS Access Key', filename: 'docs/x.md', hashed_secret: sha1(awsId), is_verified: false, is_secret: false }] } }));
    console.log('done');

    const repo = new FsRepoSource(repoSchema.parse({ roots: { bench: dir } }));
    const t0 = process.hrtime.bigint();
    const cpu0 = process.cpuUsage();
    const result = await runCheck(
      { check, options: check.options.parse({}), timeoutMs: 3_600_000 },
      {
        deployment: 'bench',
        services: ['bench'],
        sources: { repo, secrets: secretStore(holders) },
        state: noState,
        fingerprinter: new Fingerprinter(),
        knownSecrets: new KnownSecrets(),
        logger: silentLogger(),
        now: () => new Date(),
      },
    );
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    const cpu = process.cpuUsage(cpu0);
    const m = (name: string) => result.measurements?.find((x) => x.name === name)?.value ?? 0;
    const scanned = m('repo_bytes_scanned');
    console.log(`status: ${result.status}${result.error ? ` (${result.error})` : ''}; findings: ${result.findings.length}`);
    for (const f of result.findings.slice(0, 10)) console.log(`  ${f.severity} ${f.resource}`);
    console.log(`known secrets: ${count}; files: ${m('repo_files_scanned')} searched, ${m('repo_files_binary')} binary skipped; scanned ${(scanned / MB).toFixed(0)} MB in ${seconds.toFixed(2)} s (cpu ${((cpu.user + cpu.system) / 1e6).toFixed(2)} s)`);
    console.log(`throughput: ${(scanned / MB / seconds).toFixed(1)} MB/s wall; ${(scanned / MB / ((cpu.user + cpu.system) / 1e6)).toFixed(1)} MB per CPU-second; ${(m('repo_files_scanned') / seconds).toFixed(0)} files/s`);
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
