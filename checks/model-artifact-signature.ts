/**
 * Every model artifact is signed through Vault Transit, and the signature verifies.
 * *Vault Transit signing (Aegis)*: artifacts are signed in CI with a Transit key that never
 * leaves Vault, and "Before loading a model artifact, call verify_model_artifact(path,
 * key_name). If verify fails, refuse to load artifact". Aegis's own verifier skips verification
 * when its module is missing, and its signers save Vault's error body as the signature when
 * signing fails — so the auditor verifies itself, failing closed:
 *
 * - `<artifact>.sig.json` (or `<artifact>.sig`) must exist and be Vault's response to
 *   `POST <mount>/sign/<key>` (signature at `data.signature`, or a flat `{signature}`), with a
 *   `vault:v<N>:` signature and no `errors`;
 * - it must verify through `POST <mount>/verify/<key>` with `hash_algorithm: sha2-256` and
 *   `input` = base64 of the SHA-256 of the artifact, computed by streaming it;
 * - a `<artifact>.sha256` beside it, where there is one, must match;
 * - the Transit key must be a signing type and not exportable (`GET <mount>/keys/<key>`).
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { defineCheck } from '../src/core/define-check';
import { badData } from '../src/core/errors';
import { resource } from '../src/core/finding';
import type { ArtifactObject } from '../src/core/sources';
import { untrusted } from '../src/core/untrusted';
import { isRecord } from './lib/payload';

/** Keys come from the store (file names, S3 keys): they pass the untrusted-text gate, messages quote at most this much. */
const MAX_KEY_IN_MESSAGE = 120;
const SIGNATURE_RE = /^vault:v(\d{1,9}):[A-Za-z0-9+/]+={0,2}$/;

/** Files beside an artifact that are not artifacts themselves. */
const SIDECARS = ['.sig.json', '.sig', '.sha256', '.cosign.sig', '.cosign', '.asc'];

/** What Transit's 400 on verify says, as an enumerated reason (its text is not quoted into findings). */
function refusal(text: string): string {
  const rules: [RegExp, string][] = [
    [/no prefix/, 'no vault: prefix'],
    [/wrong number of fields/, 'wrong number of fields'],
    [/version number could not be decoded/, 'version could not be decoded'],
    [/version is too new/, 'a key version the key does not have'],
    [/disallowed by policy|too old/, 'a key version below min_decryption_version'],
    [/invalid base64/, 'invalid base64'],
    [/not found/, 'key not found'],
    [/does not support/, 'key cannot verify'],
  ];
  return rules.find(([re]) => re.test(text))?.[1] ?? 'refused by Vault';
}

type Parsed = { signature: string; version: number } | { errorBody: number } | { malformed: string };

/** Reads a `.sig.json` / `.sig`: Vault's raw sign response, or a flat `{signature}`. */
export function parseSignatureFile(bytes: Buffer): Parsed {
  let obj: unknown;
  try {
    obj = JSON.parse(bytes.toString('utf8'));
  } catch {
    return { malformed: 'not JSON (not a Vault Transit response)' };
  }
  if (!isRecord(obj)) return { malformed: 'not a JSON object' };
  if ('errors' in obj) return { errorBody: Array.isArray(obj.errors) ? obj.errors.length : 0 };
  const sig = typeof obj.signature === 'string' ? obj.signature : isRecord(obj.data) && typeof obj.data.signature === 'string' ? obj.data.signature : undefined;
  if (sig === undefined) return { malformed: 'no signature (neither data.signature nor signature)' };
  const m = SIGNATURE_RE.exec(sig);
  if (!m) return { malformed: 'the signature is not of the form vault:v<N>:<base64>' };
  return { signature: sig, version: Number(m[1]) };
}

function isSidecar(key: string): boolean {
  return SIDECARS.some((s) => key.endsWith(s));
}

export default defineCheck({
  meta: {
    id: 'model-artifact-signature',
    title: 'Every model artifact has a Vault Transit signature that verifies, under a signing key that cannot be exported',
    description:
      'Lists the model artifacts in the configured directory and S3 prefix. A pass proves each has a .sig.json (or .sig) holding a vault:vN: signature, not an error body, that Vault Transit verifies against the SHA-256 of the artifact as it is now; and that the Transit key signs and is not exportable.',
    severity: 'critical',
    sources: ['artifacts', 'vault'],
    schedule: '41 * * * *',
    // An unsigned or tampered model artifact is an integrity incident: page at once.
    pagesOnFirstFailure: true,
    checklist: ['model-artifacts-signed'],
    runbook: 'docs/runbooks/model-artifact-signature.md',
    // Every artifact is hashed in full each run: its work grows with the models' total size.
    timeout: 30 * 60_000,
    remediation:
      'Re-sign the artifact through Vault Transit (POST <mount>/sign/<key> with input = base64 SHA-256 of the file) and store the response as <artifact>.sig.json; if it does not verify, treat the artifact as tampered and rebuild it from a trusted source.',
  },
  messages: {
    missing: 'Artifact {{artifact}} has no signature file ({{artifact}}.sig.json or .sig): it cannot be verified before load.',
    errorBody: "Artifact {{artifact}}'s {{file}} holds Vault's error response, not a signature: signing failed and nobody noticed.",
    malformed: "Artifact {{artifact}}'s {{file}} is not a Vault Transit signature: {{reason}}.",
    invalid: 'Artifact {{artifact}} does not verify through Vault Transit under {{keys}} ({{reason}}): it is not what was signed.',
    checksumMismatch: 'Artifact {{artifact}} does not match its {{file}}: its SHA-256 changed since the checksum was written.',
    keyMissing: 'Transit key {{key}} does not exist: no artifact can be verified.',
    keyNotSigning: 'Transit key {{key}} is of type {{type}}, which cannot sign: artifacts "signed" with it carry error bodies.',
    keyExportable: 'Transit key {{key}} is exportable: its private key can leave Vault.',
  },
  options: z.object({
    /** The Transit mount (VAULT_TRANSIT_MOUNT in Aegis's setup script). */
    mount: z.string().min(1).default('transit'),
    /** Transit keys a signature may verify under (Aegis's Python signer uses aegis-model-sign, its CI scripts aegis-cosign). */
    keys: z.array(z.string().min(1)).min(1).default(['aegis-model-sign']),
    /** Artifacts hashed at once. */
    concurrency: z.number().int().min(1).max(32).default(4),
    /** A signature file larger than this is not a Vault response. */
    max_signature_bytes: z.number().int().min(256).max(1024 * 1024).default(64 * 1024),
  }),
  async run(ctx) {
    const store = ctx.source('artifacts');
    const vault = ctx.source('vault');
    const { mount, keys, concurrency, max_signature_bytes: maxSig } = ctx.options;

    const usable: string[] = [];
    for (const name of keys) {
      const key = `${mount}/${name}`;
      const info = await vault.transitKey(mount, name);
      if (!info) {
        ctx.report({ messageId: 'keyMissing', data: { key }, resource: resource({ key }), evidence: { mount, key: name } });
        continue;
      }
      const evidence = { mount, key: name, type: untrusted.text(info.type, 32), exportable: info.exportable, latestVersion: info.latestVersion, minDecryptionVersion: info.minDecryptionVersion };
      if (!info.supportsSigning) ctx.report({ messageId: 'keyNotSigning', data: { key, type: untrusted.text(info.type, 32) }, resource: resource({ key }), evidence });
      else usable.push(name);
      if (info.exportable) ctx.report({ messageId: 'keyExportable', data: { key }, resource: resource({ key, problem: 'exportable' }), evidence, severity: 'high' });
    }

    const all: ArtifactObject[] = [];
    for await (const o of store.list(ctx.signal)) all.push(o);
    const present = new Set(all.map((o) => `${o.store}\n${o.key}`));
    const artifacts = all.filter((o) => !isSidecar(o.key));
    if (artifacts.length === 0) {
      throw badData('artifacts', store.locations().join(', '), 'no model artifacts found; check sources.artifacts (dir, s3.prefix, exclude)');
    }

    let verified = 0;
    let bytes = 0;
    let hashMs = 0;
    const judge = async (a: ArtifactObject): Promise<void> => {
      const shown = untrusted.text(`${a.store}:${a.key}`, MAX_KEY_IN_MESSAGE);
      const id = untrusted.id(`${a.store}:${a.key}`);
      const res = resource({ artifact: id });
      const base = { store: a.store, location: untrusted.text(a.location, 300), size: a.size };
      const sigKey = [`${a.key}.sig.json`, `${a.key}.sig`].find((k) => present.has(`${a.store}\n${k}`));
      if (!sigKey) {
        ctx.report({ messageId: 'missing', data: { artifact: shown }, resource: res, evidence: base });
        return;
      }
      const file = sigKey.endsWith('.sig.json') ? '.sig.json' : '.sig';
      let raw: Buffer | undefined;
      try {
        raw = await store.readSmall({ store: a.store, key: sigKey }, maxSig, ctx.signal);
      } catch (e) {
        if ((e as { code?: string }).code !== 'AUDIT_ERR_BAD_DATA') throw e;
        ctx.report({ messageId: 'malformed', data: { artifact: shown, file, reason: `larger than ${maxSig} bytes, or not a file` }, resource: res, evidence: { ...base, signatureFile: file } });
        return;
      }
      if (raw === undefined) {
        ctx.report({ messageId: 'missing', data: { artifact: shown }, resource: res, evidence: base });
        return;
      }
      const parsed = parseSignatureFile(raw);
      if ('errorBody' in parsed) {
        ctx.report({ messageId: 'errorBody', data: { artifact: shown, file }, resource: res, evidence: { ...base, signatureFile: file, vaultErrors: parsed.errorBody } });
        return;
      }
      if ('malformed' in parsed) {
        ctx.report({ messageId: 'malformed', data: { artifact: shown, file, reason: parsed.malformed }, resource: res, evidence: { ...base, signatureFile: file } });
        return;
      }

      // Streamed: a model of many gigabytes never sits in memory.
      const t0 = process.hrtime.bigint();
      const h = createHash('sha256');
      let n = 0;
      for await (const chunk of store.stream(a, ctx.signal)) {
        h.update(chunk);
        n += chunk.length;
      }
      hashMs += Number(process.hrtime.bigint() - t0) / 1e6;
      bytes += n;
      const digest = h.digest();

      const sumKey = `${a.key}.sha256`;
      if (present.has(`${a.store}\n${sumKey}`)) {
        const sum = await store.readSmall({ store: a.store, key: sumKey }, 4096, ctx.signal).catch(() => undefined);
        const hex = sum ? /^\s*([0-9a-fA-F]{64})\b/.exec(sum.toString('latin1'))?.[1]?.toLowerCase() : undefined;
        if (hex !== digest.toString('hex')) {
          ctx.report({ messageId: 'checksumMismatch', data: { artifact: shown, file: '.sha256' }, resource: resource({ artifact: id, file: '.sha256' }), evidence: { ...base, bytesHashed: n } });
        }
      }
      if (usable.length === 0) return; // the key findings say why nothing can be verified

      const input = digest.toString('base64');
      const reasons: string[] = [];
      for (const name of usable) {
        const verdict = await vault.transitVerify(mount, name, input, parsed.signature);
        if ('valid' in verdict && verdict.valid) {
          verified++;
          return;
        }
        reasons.push('valid' in verdict ? `${name}: does not match` : `${name}: ${refusal(verdict.refused)}`);
      }
      ctx.report({
        messageId: 'invalid',
        data: { artifact: shown, keys: usable.map((k) => `${mount}/${k}`).join(', '), reason: reasons.join('; ') },
        resource: res,
        evidence: { ...base, signatureFile: file, keyVersion: parsed.version, bytesHashed: n, reasons },
      });
    };

    // A small pool: hashing is CPU, reading is I/O; a handful at once keeps both busy.
    let next = 0;
    const worker = async () => {
      while (next < artifacts.length) {
        if (ctx.signal.aborted) return;
        await judge(artifacts[next++]);
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, artifacts.length) }, worker));

    ctx.measure('model_artifacts', artifacts.length, 'Model artifacts found under the configured locations');
    ctx.measure('model_artifacts_verified', verified, 'Model artifacts whose Vault Transit signature verified');
    ctx.measure('model_artifact_bytes_hashed', bytes, 'Bytes of model artifacts hashed (SHA-256) this run');
    if (hashMs > 0) ctx.measure('model_artifact_hash_seconds', hashMs / 1000, 'Time spent streaming and hashing model artifacts (summed over the pool)');
  },
});
