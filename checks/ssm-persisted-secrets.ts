/**
 * SSM keeps Run Command parameters in its command history for about 30 days, readable by
 * anyone with ssm:ListCommands. A deploy that passes a secret literally (instead of a
 * `{{ssm-secure:…}}` reference) has persisted it there. This check finds such parameters by
 * name and by keyed fingerprints of the deployment's known secrets, checks that secret-named
 * parameters are SecureString, and that command output never echoed a known secret.
 */
import { z } from 'zod';
import { defineCheck } from '../src/core/define-check';
import { resource } from '../src/core/finding';
import { duration } from '../src/core/duration';
import type { Fingerprinter } from '../src/core/secret';
import { untrusted } from '../src/core/untrusted';

const DEFAULT_PATTERNS = ['*SECRET*', '*PASSWORD*', '*TOKEN*', '*PRIVATE_KEY*', '*API_KEY*'];
const DEFAULT_KNOWN = ['INTERNAL_SECRET', 'INTERNAL_SECRET_PREVIOUS', 'JWT_SECRET_KEY', 'RECEIPT_SIGNING_PRIVATE_KEY', 'ROOT_SIGNING_PRIVATE_KEY'];

/** Known values shorter than this would match ordinary words; they are not matched by fingerprint. */
const MIN_MATCH_LENGTH = 8;
/** A whole value that is only a Parameter Store reference (the agent or plugin resolves it on the node). */
const REFERENCE_RE = /^\s*\{\{\s*ssm(?:-secure)?:[/\w.-]+\s*\}\}\s*$/;
/** Shell expansions resolve on the node too: `$VAR`, `${VAR}`, `$(cmd)`. */
const EXPANSION_RE = /^\$[({A-Za-z_]/;
/**
 * What may be named in a message as the left side of `NAME=value`: a variable or flag name.
 * Anything else (`mysql://app:pw@db/x?sslmode=…`) is untrusted text that may hold the secret.
 */
const ASSIGNED_NAME_RE = /^-{0,2}[A-Za-z_][A-Za-z0-9_.-]{0,63}$/;
/** Parameter names quoted in messages are cut to this; resources to untrusted.id's bound. */
const MAX_NAME_IN_MESSAGE = 120;
/** What SSM answers: the parameter types, command ids (UUIDs) and managed instance ids. */
const PARAMETER_TYPES = ['String', 'StringList', 'SecureString'] as const;
const COMMAND_ID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const INSTANCE_ID_RE = /^(?:i|mi)-[0-9a-f]{8,17}$/;

function globToRegExp(glob: string): RegExp {
  const body = glob
    .split('*')
    .map((s) => s.replace(/[.+?^${}()|[\]\\/]/g, '\\$&'))
    .join('.*');
  return new RegExp(`^${body}$`, 'i');
}

function stripQuotes(s: string): string {
  return s.replace(/^['"`]+|['"`;,]+$/g, '');
}

/** Keyed fingerprints of every known secret value (and of each line of a multi-line one). */
class KnownFingerprints {
  readonly #byFp = new Map<string, string>();
  constructor(private readonly fp: Fingerprinter) {}

  add(name: string, value: string): void {
    if (value.length >= MIN_MATCH_LENGTH) this.#byFp.set(this.fp.fingerprint(value), name);
    if (value.includes('\n')) {
      for (const line of value.split(/\r?\n/)) {
        const t = line.trim();
        if (t.length >= 16 && !/^-----(BEGIN|END) /.test(t)) this.#byFp.set(this.fp.fingerprint(t), name);
      }
    }
  }

  get size(): number {
    return this.#byFp.size;
  }

  /** The name of the known secret this candidate equals, if any. */
  match(candidate: string): string | undefined {
    if (candidate.length < MIN_MATCH_LENGTH || this.#byFp.size === 0) return undefined;
    return this.#byFp.get(this.fp.fingerprint(candidate));
  }

  /**
   * The first known secret found in free text: the whole text, each line, each whitespace-separated
   * token, the value after a token's first `=` (base64 values end in `=`, so the value is not cut
   * at later ones), and each `=`-separated piece.
   */
  find(text: string): string | undefined {
    const whole = this.match(text) ?? this.match(text.trim());
    if (whole) return whole;
    for (const line of text.split(/\r?\n/)) {
      const hit = this.match(line.trim());
      if (hit) return hit;
      for (const word of line.split(/\s+/)) {
        const eq = word.indexOf('=');
        const candidates = eq >= 0 ? [word, word.slice(eq + 1), ...word.split(/=+/)] : [word];
        for (const raw of candidates) {
          const hitTok = this.match(raw) ?? this.match(stripQuotes(raw));
          if (hitTok) return hitTok;
        }
      }
    }
    return undefined;
  }
}

export default defineCheck({
  meta: {
    id: 'ssm-persisted-secrets',
    title: 'Deploy commands in SSM history carry no literal secret values',
    description:
      'Recent aegis-deploy Run Commands pass secrets only as Parameter Store references, secret-named parameters are SecureString, and no command output echoes a known secret. SSM keeps command parameters and output in its history, so a literal value there is a persisted secret.',
    severity: 'critical',
    sources: ['ssm', 'secrets'],
    schedule: '*/15 * * * *',
    // A secret in Parameter Store or Run Command history has leaked: page at once.
    pagesOnFirstFailure: true,
    checklist: ['no-plaintext-secrets', 'deploy-params-not-persisted'],
    runbook: 'docs/runbooks/ssm-persisted-secrets.md',
    remediation:
      'Rotate every secret that appeared literally, then pass secrets as {{ssm-secure:/aegis/<env>/<service>/<NAME>}} references (or have the node fetch them) and store secret-named parameters as SecureString.',
  },
  messages: {
    literalSecret: 'Deploy command {{command}} ({{date}}) carries a literal secret in parameter {{parameter}}: {{how}}.',
    notSecureString: 'Parameter {{parameter}} is named like a secret but is stored as {{type}}, not SecureString.',
    secretInOutput: 'Output of deploy command {{command}} ({{date}}) on {{instance}} contains the value of {{secret}}.',
  },
  options: z.object({
    /** Parameter names that hold secrets (case-insensitive globs). */
    secret_name_patterns: z.array(z.string().min(1)).min(1).default(DEFAULT_PATTERNS),
    /** Secrets whose values are looked for (by keyed fingerprint) in parameters and output. */
    known_secrets: z.array(z.string().min(1)).default(DEFAULT_KNOWN),
    /** Overrides the source's `history` window. */
    history: duration().optional(),
    /** Also read each command's invocation output. */
    check_output: z.boolean().default(true),
  }),
  async run(ctx) {
    const ssm = ctx.source('ssm');
    const secrets = ctx.source('secrets');
    const patterns = ctx.options.secret_name_patterns.map(globToRegExp);
    const secretNamed = (name: string): boolean => {
      const n = name.replace(/^-+/, '').replace(/-/g, '_');
      return patterns.some((re) => re.test(n));
    };

    const known = new KnownFingerprints(ctx.fingerprinter);
    for (const name of ctx.options.known_secrets) {
      for (const h of await secrets.holders(name)) known.add(name, h.value.reveal());
    }

    for await (const p of ssm.parameters(ctx.signal)) {
      const leaf = p.name.slice(p.name.lastIndexOf('/') + 1);
      if (secretNamed(leaf) && p.type !== 'SecureString') {
        ctx.report({
          messageId: 'notSecureString',
          data: { parameter: untrusted.text(p.name, MAX_NAME_IN_MESSAGE), type: untrusted.oneOf(p.type, PARAMETER_TYPES) },
          resource: resource({ parameter: untrusted.id(p.name) }),
          evidence: { parameter: untrusted.text(p.name, 512), type: untrusted.oneOf(p.type, PARAMETER_TYPES), lastModified: p.lastModified?.toISOString() ?? null },
          severity: 'high',
        });
      }
    }

    const historyMs = ctx.options.history ?? ssm.historyMs ?? 30 * 86_400_000;
    const since = new Date(ctx.now().getTime() - historyMs);
    let commands = 0;
    for await (const cmd of ssm.commands({ documentName: ssm.deployDocument, since, signal: ctx.signal })) {
      commands++;
      const date = cmd.requestedAt.toISOString();
      const command = untrusted.matching(cmd.commandId, COMMAND_ID_RE);
      for (const [parameter, values] of Object.entries(cmd.parameters)) {
        const how = literalIn(parameter, values, secretNamed, known);
        if (!how) continue;
        ctx.report({
          messageId: 'literalSecret',
          data: { command, date, parameter: untrusted.text(parameter, MAX_NAME_IN_MESSAGE), how },
          resource: resource({ command: untrusted.id(cmd.commandId), parameter: untrusted.id(parameter) }),
          evidence: { command, document: untrusted.text(cmd.documentName, 128), parameter: untrusted.text(parameter, 512), requestedAt: date, detection: how },
        });
      }
      if (!ctx.options.check_output || known.size === 0) continue;
      for await (const out of ssm.outputs(cmd.commandId, ctx.signal)) {
        const secret = known.find(out.output);
        if (!secret) continue;
        const instance = untrusted.matching(out.instanceId, INSTANCE_ID_RE);
        ctx.report({
          messageId: 'secretInOutput',
          data: { command, date, instance, secret },
          resource: resource({ command: untrusted.id(cmd.commandId), instance: untrusted.id(out.instanceId) }),
          evidence: { command, instance, plugin: untrusted.text(out.pluginName, 128), requestedAt: date, secret },
        });
      }
    }
    ctx.logger.debug({ commands, since: since.toISOString() }, 'Deploy commands read');
  },
});

/** Why a command parameter holds a literal secret, or undefined. Never returns any part of the value. */
function literalIn(
  parameter: string,
  values: readonly string[],
  secretNamed: (n: string) => boolean,
  known: KnownFingerprints,
): string | undefined {
  if (secretNamed(parameter) && values.some((v) => v.trim() !== '' && !REFERENCE_RE.test(v))) {
    return 'a secret-named parameter holds a value, not an {{ssm-secure:…}} reference';
  }
  for (const v of values) {
    const hit = known.find(v);
    if (hit) return `the value of ${hit} appears in it`;
    // `NAME=value` assignments inside a command line, e.g. `export JWT_SECRET_KEY=abc`.
    for (const line of v.split(/\r?\n/)) {
      for (const tok of line.split(/\s+/)) {
        const eq = tok.indexOf('=');
        if (eq <= 0) continue;
        const name = stripQuotes(tok.slice(0, eq));
        const value = stripQuotes(tok.slice(eq + 1));
        if (secretNamed(name) && value !== '' && !REFERENCE_RE.test(value) && !EXPANSION_RE.test(value)) {
          return ASSIGNED_NAME_RE.test(name) ? `${untrusted.text(name, 64)} is assigned a literal value` : 'a secret-named assignment holds a literal value';
        }
      }
    }
  }
  return undefined;
}
