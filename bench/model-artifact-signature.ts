/**
 * model-artifact-signature at scale: N artifacts of S MB (default 8 × 100 MB) in a directory,
 * each signed through the Vault emulator's Transit over HTTP as Aegis's CI does it, then the
 * check through the real sources (directory + node-vault): artifacts per second, and MB/s of
 * streaming SHA-256 (bytes hashed / wall time of the check, and a single-stream baseline of
 * node's SHA-256 over the same bytes in memory). Prints the figures; asserts nothing.
 *
 *   npm run build && node dist/bench/model-artifact-signature.js [artifacts] [megabytes] [concurrency]
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import check from '../checks/model-artifact-signature';
import { artifactsSchema, vaultSchema } from '../src/config/schema';
import { silentLogger } from '../src/core/logger';
import { runCheck } from '../src/core/runner';
import { Fingerprinter, KnownSecrets } from '../src/core/secret';
import { VaultEmulator } from '../src/sandbox/emulators';
import { ArtifactLocations } from '../src/sources/artifacts';
import { NodeVaultSource, VaultClientHandle } from '../src/sources/vault';

async function main(): Promise<void> {
  const n = Number(process.argv[2] ?? 8);
  const mb = Number(process.argv[3] ?? 100);
  const concurrency = Number(process.argv[4] ?? 4);
  const dir = await mkdtemp(join(tmpdir(), 'bench-artifacts-'));
  const vault = new VaultEmulator();
  const running = await vault.start();
  const known = new KnownSecrets();
  const artifacts = new ArtifactLocations(artifactsSchema.parse({ dir }));
  let handle: VaultClientHandle | undefined;
  try {
    vault.createTransitKey('aegis-model-sign', { type: 'ecdsa-p256' });
    // One random block repeated: writing N × S MB stays fast, hashing cost is the same as for any bytes.
    const block = randomBytes(1024 * 1024);
    let t = Date.now();
    for (let i = 0; i < n; i++) {
      const body = Buffer.concat([Buffer.from(`artifact ${i}\n`), ...Array.from({ length: mb }, () => block)]);
      const path = join(dir, `model-${i}`, 'model.tar.gz');
      await mkdir(join(dir, `model-${i}`), { recursive: true });
      await writeFile(path, body);
      const input = createHash('sha256').update(body).digest('base64');
      const res = await fetch(`${running.url}/v1/transit/sign/aegis-model-sign`, { method: 'POST', headers: { 'X-Vault-Token': vault.rootToken }, body: JSON.stringify({ input }) });
      await writeFile(`${path}.sig.json`, await res.text());
    }
    console.log(`${n} artifacts of ${mb} MB written and signed in ${((Date.now() - t) / 1000).toFixed(1)} s`);

    // Baseline: one stream of the first file through SHA-256 (page cache warm).
    t = Date.now();
    const h = createHash('sha256');
    for await (const c of createReadStream(join(dir, 'model-0', 'model.tar.gz'), { highWaterMark: 1024 * 1024 })) h.update(c as Buffer);
    h.digest();
    const baseMs = Date.now() - t;
    console.log(`baseline: one ${mb} MB file streamed through SHA-256 in ${baseMs} ms = ${(mb / (baseMs / 1000)).toFixed(0)} MB/s`);

    const tokenFile = join(tmpdir(), `bench-token-${process.pid}`);
    await writeFile(tokenFile, vault.rootToken);
    handle = new VaultClientHandle(vaultSchema.parse({ address: running.url, token_file: tokenFile, timeout: 10_000 }), known);
    const sources = { artifacts, vault: new NodeVaultSource(handle) };
    for (const pass of [1, 2]) {
      const start = process.hrtime.bigint();
      const result = await runCheck(
        { check, options: check.options.parse({ concurrency }), timeoutMs: 30 * 60_000 },
        { deployment: 'bench', services: [], sources, state: { get: async () => undefined, read: async () => ({ status: 'absent' as const }), set: async () => undefined }, fingerprinter: new Fingerprinter(), knownSecrets: known, logger: silentLogger(), now: () => new Date() },
      );
      const s = Number(process.hrtime.bigint() - start) / 1e9;
      const m = Object.fromEntries((result.measurements ?? []).map((x) => [x.name, x.value]));
      if (result.status !== 'pass') throw new Error(`check ${result.status}: ${result.error ?? result.findings.map((f) => f.message).join('; ')}`);
      const hashedMb = Number(m.model_artifact_bytes_hashed) / 2 ** 20;
      console.log(
        `run ${pass} (concurrency ${concurrency}): ${m.model_artifacts_verified}/${m.model_artifacts} verified in ${s.toFixed(2)} s = ${(n / s).toFixed(2)} artifacts/s, ` +
          `${(hashedMb / s).toFixed(0)} MB/s hashed (RSS ${Math.round(process.memoryUsage().rss / 2 ** 20)} MiB)`,
      );
    }
  } finally {
    handle?.close();
    artifacts.close();
    await running.close();
    await rm(dir, { recursive: true, force: true });
    await rm(join(tmpdir(), `bench-token-${process.pid}`), { force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
