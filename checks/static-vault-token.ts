/**
 * No Vault token is baked into what deploys Aegis. *Vault Transit signing (Aegis)* ("Runtime
 * integration": "never bake VAULT_TOKEN into images or manifests"; "Operational & security
 * recommendations": no long-lived VAULT_TOKEN) and *Secrets and Supply-chain Guidance for
 * Aegis* §3 ("Avoid long-lived static credentials") ask for short-lived tokens from an auth
 * method (Kubernetes auth through Vault Agent, AppRole, CI OIDC). Aegis's own examples set
 * `VAULT_TOKEN` from a `secretKeyRef` and from the repository secret `secrets.VAULT_TOKEN`.
 *
 * The deploy trees are parsed, not grepped: YAML (every document of a stream; Kubernetes
 * manifests of any kind, compose files, CI workflows) node by node without expanding aliases,
 * and Dockerfiles instruction by instruction (line continuations, escape directive). A value is
 * never read into a finding: only where it is set and how.
 */
import type * as DockerfileAst from 'dockerfile-ast';
import type * as Yaml from 'yaml';
import type { Node, Pair, YAMLMap } from 'yaml';

// Loaded when the check runs, not when the catalog is listed (start-up of every CLI command).
// Loaded on first use, then kept: a require() of a loaded module still resolves its path, and
// isMap/isPair/isScalar run for every node of every YAML file.
let dockerfileAstModule: typeof DockerfileAst | undefined;
let yamlModule: typeof Yaml | undefined;
/* eslint-disable @typescript-eslint/no-require-imports */
const dockerfileAst = () => (dockerfileAstModule ??= require('dockerfile-ast') as typeof DockerfileAst);
const yaml = () => (yamlModule ??= require('yaml') as typeof Yaml);
/* eslint-enable @typescript-eslint/no-require-imports */
const isMap = ((n: unknown) => yaml().isMap(n)) as typeof Yaml.isMap;
const isPair = ((n: unknown) => yaml().isPair(n)) as typeof Yaml.isPair;
const isScalar = ((n: unknown) => yaml().isScalar(n)) as typeof Yaml.isScalar;
const isSeq = ((n: unknown) => yaml().isSeq(n)) as typeof Yaml.isSeq;
import { z } from 'zod';
import { defineCheck } from '../src/core/define-check';
import { resource } from '../src/core/finding';
import type { DeployFile } from '../src/core/sources';
import { untrusted } from '../src/core/untrusted';

/** File paths and names come from the tree: they pass the untrusted-text gate, messages quote at most this much. */
const MAX_NAME_IN_MESSAGE = 120;
/** Deeper flow nesting or indentation than this makes the YAML parser recurse until it fails (or the process dies): not parsed. */
const MAX_FLOW_DEPTH = 64;
const MAX_INDENT = 256;

type How = 'literal' | 'secretRef' | 'configMapRef' | 'secretData' | 'ciSecret' | 'dockerEnv' | 'dockerArg';

interface Hit {
  how: How;
  line: number;
  /** Where in the file, for evidence: a YAML path or a Dockerfile instruction. */
  where: string;
  /** The Kubernetes Secret / ConfigMap or CI secret the token comes from. */
  from?: string;
}

/**
 * How a YAML string value sets the token: a GitHub Actions expression over `secrets.*` or
 * `vars.*` is a long-lived CI secret; a value that is only a reference to something resolved
 * at run time (`${VAR}`, `$VAR`, `$(VAR)`, `${{ steps.x.outputs.token }}`) sets nothing itself;
 * anything else is the token, literally.
 */
function classifyText(text: string): { how: 'literal' | 'ciSecret'; from?: string } | undefined {
  const t = text.trim();
  if (t === '') return undefined;
  const ci = /\$\{\{[^}]*?\b(secrets|vars)\s*(?:\.\s*([A-Za-z_][A-Za-z0-9_-]*)|\[\s*['"]([^'"]+)['"]\s*\])/.exec(t);
  if (ci) return { how: 'ciSecret', from: `${ci[1]}.${ci[2] ?? ci[3]}` };
  const ref = /^(\$\{\{[^}]*\}\}|\$\{[A-Za-z_][A-Za-z0-9_]*(?:[:?+-][^}]*)?\}|\$[A-Za-z_][A-Za-z0-9_]*|\$\([A-Za-z_][A-Za-z0-9_]*\))$/;
  if (ref.test(t)) return undefined;
  return { how: 'literal' };
}

/** Conservative scan for nesting the YAML parser cannot survive; quotes and comments end at a line's end. */
export function yamlTooDeep(text: string): string | undefined {
  let depth = 0;
  let lineStart = true;
  let indent = 0;
  let quote: string | undefined;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '\n') {
      lineStart = true;
      indent = 0;
      quote = undefined;
      continue;
    }
    if (lineStart) {
      if (c === ' ') {
        if (++indent > MAX_INDENT) return `indented deeper than ${MAX_INDENT} columns`;
        continue;
      }
      lineStart = false;
    }
    if (quote) {
      if (c === quote) quote = undefined;
      continue;
    }
    if (c === '"' || c === "'") quote = c;
    else if (c === '#' && (i === 0 || /\s/.test(text[i - 1]))) {
      const nl = text.indexOf('\n', i);
      i = nl < 0 ? text.length : nl - 1;
    } else if (c === '[' || c === '{') {
      if (++depth > MAX_FLOW_DEPTH) return `flow collections nested deeper than ${MAX_FLOW_DEPTH} levels`;
    } else if ((c === ']' || c === '}') && depth > 0) depth--;
  }
  return undefined;
}

function scalarText(n: unknown): string | undefined {
  if (!isScalar(n)) return undefined;
  const v = n.value;
  return v === null || v === undefined ? undefined : String(v);
}

function mapPair(m: unknown, key: string): Pair | undefined {
  if (!isMap(m)) return undefined;
  for (const p of (m as YAMLMap).items) if (isPair(p) && scalarText(p.key) === key) return p as Pair;
  return undefined;
}

function mapGet(m: unknown, key: string): unknown {
  return mapPair(m, key)?.value;
}

function pathText(path: readonly (string | number)[]): string {
  return path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${p}`)).join('').replace(/^\./, '') || '(document)';
}

/** Every way one YAML document sets a token variable. Iterative: no recursion on hostile depth. */
function yamlHits(doc: { contents: unknown }, names: ReadonlySet<string>, lineOf: (offset: number) => number): Hit[] {
  const hits: Hit[] = [];
  const seen = new Set<unknown>();
  const root = doc.contents;
  const kind = scalarText(mapGet(root, 'kind'));
  const lineOfNode = (n: unknown, fallback: unknown): number => {
    const r = (n as Node | undefined)?.range ?? (fallback as Node | undefined)?.range;
    return r ? lineOf(r[0]) : 1;
  };
  /** Records a hit once per node; its line is the value's, or `at`'s (a key) where there is no value node. */
  const add = (how: How, node: unknown, at: unknown, path: readonly (string | number)[], from?: string) => {
    if (seen.has(node ?? at)) return;
    seen.add(node ?? at);
    hits.push({ how, line: lineOfNode(node, at), where: pathText(path), ...(from ? { from } : {}) });
  };
  const addAt = (how: How, node: unknown, lineNode: unknown, path: readonly (string | number)[], from?: string) => {
    if (seen.has(node)) return;
    seen.add(node);
    hits.push({ how, line: lineOfNode(lineNode, node), where: pathText(path), ...(from ? { from } : {}) });
  };
  /** A value assigned to a token variable, in the context it is found. */
  const assigned = (value: unknown, at: unknown, path: readonly (string | number)[], inSecret: boolean) => {
    if (inSecret) {
      if (scalarText(value) !== undefined) add('secretData', value, at, path, scalarText(mapGet(mapGet(root, 'metadata'), 'name')) ?? '(unnamed)');
      return;
    }
    // GitLab CI's long form: `VAULT_TOKEN: { value: "...", description: ... }`.
    const v = isMap(value) && mapGet(value, 'value') !== undefined ? mapGet(value, 'value') : value;
    const text = scalarText(v);
    if (text === undefined) return;
    const c = classifyText(text);
    if (c) add(c.how, v, at, path, c.from);
  };

  const stack: { node: unknown; path: (string | number)[] }[] = [{ node: root, path: [] }];
  while (stack.length > 0) {
    const { node, path } = stack.pop() as { node: unknown; path: (string | number)[] };
    if (isMap(node)) {
      // A container env entry (Kubernetes, Argo, Tekton, KServe): { name: VAULT_TOKEN, value | valueFrom }.
      const entryName = scalarText(mapGet(node, 'name'));
      if (entryName !== undefined && names.has(entryName)) {
        const valueFrom = mapGet(node, 'valueFrom');
        if (isMap(valueFrom)) {
          // Reported at the secretKeyRef / configMapKeyRef key: that line names where the token is kept.
          const secret = mapPair(valueFrom, 'secretKeyRef');
          const cm = mapPair(valueFrom, 'configMapKeyRef');
          if (secret && isMap(secret.value)) addAt('secretRef', secret.value, secret.key, [...path, 'valueFrom', 'secretKeyRef'], scalarText(mapGet(secret.value, 'name')) ?? '(unnamed)');
          else if (cm && isMap(cm.value)) addAt('configMapRef', cm.value, cm.key, [...path, 'valueFrom', 'configMapKeyRef'], scalarText(mapGet(cm.value, 'name')) ?? '(unnamed)');
        } else if (mapGet(node, 'value') !== undefined) {
          assigned(mapGet(node, 'value'), node, [...path, 'value'], false);
        }
      }
      const items = node.items as Pair[];
      for (let i = items.length - 1; i >= 0; i--) {
        const p = items[i];
        if (!isPair(p)) continue;
        const key = scalarText(p.key);
        if (key === undefined) continue;
        const childPath = [...path, key];
        if (names.has(key)) {
          const inSecret = kind === 'Secret' && path.length === 1 && (path[0] === 'data' || path[0] === 'stringData');
          assigned(p.value, p.key, childPath, inSecret);
        }
        stack.push({ node: p.value, path: childPath });
      }
    } else if (isSeq(node)) {
      for (let i = node.items.length - 1; i >= 0; i--) {
        const item = node.items[i];
        // Compose's list form: `- VAULT_TOKEN=value`.
        const text = scalarText(item);
        const eq = text?.indexOf('=') ?? -1;
        if (text !== undefined && eq > 0 && names.has(text.slice(0, eq).trim())) {
          const c = classifyText(text.slice(eq + 1));
          if (c) add(c.how, item, item, [...path, i], c.from);
        }
        stack.push({ node: item, path: [...path, i] });
      }
    } else if (isScalar(node) && typeof node.value === 'string' && node.value.includes('${{')) {
      // A token secret used anywhere else in a workflow (an action's input, a run script).
      for (const m of node.value.matchAll(/\$\{\{[^}]*?\bsecrets\s*(?:\.\s*([A-Za-z_][A-Za-z0-9_-]*)|\[\s*['"]([^'"]+)['"]\s*\])/g)) {
        const name = m[1] ?? m[2];
        if (names.has(name.toUpperCase())) add('ciSecret', node, node, path, `secrets.${name}`);
      }
    }
  }
  return hits;
}

export default defineCheck({
  meta: {
    id: 'static-vault-token',
    title: 'No Vault token is set literally, from a stored secret, in an image or from a long-lived CI secret in the deploy files',
    description:
      'Parses the configured deploy trees (Kubernetes manifests, compose files, Dockerfiles, CI workflows). A pass proves no VAULT_TOKEN is set there literally, from a Kubernetes Secret or ConfigMap, as a Docker ENV or build ARG, or from a long-lived CI secret: tokens come from an auth method at run time, as the Aegis runbooks require.',
    severity: 'critical',
    sources: ['deploy'],
    schedule: '17 * * * *',
    // A Vault token written into a deploy tree has leaked: page at once.
    pagesOnFirstFailure: true,
    checklist: ['no-plaintext-secrets'],
    runbook: 'docs/runbooks/static-vault-token.md',
    remediation:
      'Remove the token from the file, revoke it in Vault (vault token revoke -accessor …), and give the workload a short-lived token from an auth method: Vault Agent with Kubernetes auth for pods, the OIDC login of hashicorp/vault-action for CI, a BuildKit secret mount for image builds.',
  },
  messages: {
    literal: '{{file}} line {{line}} sets {{name}} to a literal value ({{where}}): the token is in the deploy files.',
    secretRef: '{{file}} line {{line}} sets {{name}} from Kubernetes Secret {{from}} (secretKeyRef): a long-lived token stored in the cluster.',
    configMapRef: '{{file}} line {{line}} sets {{name}} from ConfigMap {{from}} (configMapKeyRef): a token in plain configuration.',
    secretData: '{{file}} line {{line}}: Kubernetes Secret {{from}} holds a {{name}} key: a long-lived token stored in the cluster.',
    ciSecret: '{{file}} line {{line}} reads {{name}} from the long-lived CI secret {{from}} ({{where}}): use a short-lived token from an OIDC login.',
    dockerEnv: '{{file}} line {{line}} bakes {{name}} into the image with ENV: every layer and container of it carries the token.',
    dockerArg: '{{file}} line {{line}} takes {{name}} as a build ARG: build arguments stay in the image history; use a secret mount.',
    unscanned: '{{file}} could not be scanned: {{reason}}.',
    skipped: '{{file}} was not followed: {{reason}}.',
  },
  options: z.object({
    /** Variable names that carry a Vault token. */
    names: z.array(z.string().min(1)).min(1).default(['VAULT_TOKEN']),
  }),
  preload() {
    dockerfileAst();
    yaml();
  },
  async run(ctx) {
    const deploy = ctx.source('deploy');
    const names = new Set(ctx.options.names);
    const nameList = ctx.options.names.join('/');
    let scanned = 0;
    const reported = new Set<string>();
    const report = (f: DeployFile, h: Hit) => {
      const file = `${f.tree}:${f.path}`;
      const res = resource({ file: untrusted.id(file), line: h.line });
      if (reported.has(res)) return;
      reported.add(res);
      ctx.report({
        messageId: h.how,
        data: { file: untrusted.text(file, MAX_NAME_IN_MESSAGE), line: h.line, name: nameList, where: untrusted.text(h.where, 80), from: untrusted.text(h.from ?? '', 64) },
        resource: res,
        evidence: { tree: f.tree, file: untrusted.text(f.path, 300), line: h.line, kind: f.kind, where: untrusted.text(h.where, 200), ...(h.from ? { from: untrusted.text(h.from, 120) } : {}) },
        severity: h.how === 'literal' || h.how === 'dockerEnv' ? 'critical' : 'high',
      });
    };
    const unscanned = (f: DeployFile, reason: string) =>
      ctx.report({
        messageId: 'unscanned',
        data: { file: untrusted.text(`${f.tree}:${f.path}`, MAX_NAME_IN_MESSAGE), reason },
        resource: resource({ file: untrusted.id(`${f.tree}:${f.path}`) }),
        evidence: { tree: f.tree, file: untrusted.text(f.path, 300), kind: f.kind, reason },
        severity: 'medium',
      });

    for await (const f of deploy.files(ctx.signal)) {
      if (f.text === undefined) {
        unscanned(f, f.unreadable ?? 'not readable');
        continue;
      }
      scanned++;
      if (f.kind === 'dockerfile') {
        const df = dockerfileAst().DockerfileParser.parse(f.text);
        for (const env of df.getENVs()) {
          for (const p of env.getProperties()) {
            if (names.has(p.getName()) && (p.getValue() ?? '') !== '') report(f, { how: 'dockerEnv', line: p.getRange().start.line + 1, where: 'ENV' });
          }
        }
        for (const arg of df.getARGs()) {
          const p = arg.getProperty();
          if (p && names.has(p.getName())) report(f, { how: 'dockerArg', line: p.getRange().start.line + 1, where: 'ARG' });
        }
        continue;
      }
      const deep = yamlTooDeep(f.text);
      if (deep) {
        unscanned(f, deep);
        continue;
      }
      const lc = new (yaml().LineCounter)();
      const docs = yaml().parseAllDocuments(f.text, { lineCounter: lc, prettyErrors: false, uniqueKeys: false });
      const list = Array.isArray(docs) ? docs : [];
      let firstError: { code: string; line: number } | undefined;
      for (const doc of list) {
        const err = doc.errors[0];
        if (err) {
          firstError ??= { code: /^[A-Z_]+$/.test(err.code) ? err.code : 'ERROR', line: lc.linePos(err.pos[0]).line };
          continue;
        }
        for (const h of yamlHits(doc, names, (o) => lc.linePos(o).line)) report(f, h);
      }
      if (firstError) unscanned(f, `not valid YAML (${firstError.code} at line ${firstError.line})`);
    }

    for (const s of deploy.stats().skippedLinks) {
      const file = `${s.tree}:${s.path}`;
      ctx.report({
        messageId: 'skipped',
        data: { file: untrusted.text(file, MAX_NAME_IN_MESSAGE), reason: s.reason },
        resource: resource({ file: untrusted.id(file) }),
        evidence: { tree: s.tree, file: untrusted.text(s.path, 300), reason: s.reason },
        severity: 'info',
      });
    }
    ctx.measure('deploy_files_scanned', scanned, 'Deploy files (YAML, Dockerfiles) parsed for Vault tokens');
  },
});
