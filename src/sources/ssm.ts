/**
 * AWS Systems Manager: Run Command history and Parameter Store, through the real SDK and
 * its paginators. Pages may be empty while still carrying a token; pagination ends only on
 * a missing token (and a repeated token, or a page cap, ends it too, so a broken server
 * cannot loop us forever).
 */
import {
  GetCommandInvocationCommand,
  SSMClient,
  paginateDescribeParameters,
  paginateGetParametersByPath,
  paginateListCommandInvocations,
  paginateListCommands,
  type Command,
  type Parameter,
} from '@aws-sdk/client-ssm';
import type {
  SecretHolder,
  SigningKeyHolder,
  SigningKeyName,
  SsmCommand,
  SsmInvocationOutput,
  SsmParameterMeta,
  SsmSource,
} from '../core/sources';
import { Secret, type KnownSecrets } from '../core/secret';
import { badData, sourceUnavailable } from '../core/errors';
import type { SsmConfig } from '../config/schema';
import { awsClientConfig, MAX_PAGES } from './aws';
import { stopIfAborted, wrapSourceError } from './errors';
import { publicKeyOfPrivatePem } from './pem';
import { SIGNING_KEY_ENV, type SecretBackend } from './secrets';
import { isValidDate } from '../core/time';
import { untrusted } from '../core/untrusted';

const SOURCE = 'ssm';
/** GetCommandInvocation's InstanceId constraint, exactly as the API states it (the anchors bind to the alternatives). */
const INSTANCE_ID_SHAPE = /^(i-(\w{8}|\w{17}))|(mi-\w{17})$/;
const COMMAND_ID_SHAPE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const PARAMETER_TYPES = new Set(['String', 'StringList', 'SecureString']);

/** Names that hold secrets by convention, for deciding what to register with the scrubber. */
const SECRET_NAME_RE = /SECRET|PASSWORD|TOKEN|PRIVATE_KEY|API_KEY|CREDENTIAL/i;

/** Drains an SDK paginator, wrapping its failures; bounded by MAX_PAGES. */
async function* pages<P>(what: string, it: AsyncIterable<P>, signal?: AbortSignal): AsyncGenerator<P> {
  let n = 0;
  try {
    for await (const page of it) {
      stopIfAborted(signal, SOURCE, what);
      yield page;
      if (++n >= MAX_PAGES) throw badData(SOURCE, what, `more than ${MAX_PAGES} pages`);
    }
  } catch (e) {
    throw wrapSourceError(SOURCE, what, e);
  }
}

/**
 * Parameter Store answers a path that does not exist with an empty list, exactly like a path
 * whose parameters are all absent. The configured path is the deployment's whole hierarchy, so
 * nothing under it at all is a mistyped path (or a wrong account/region), not "no secrets".
 */
function emptyPath(what: string): Error {
  return sourceUnavailable(SOURCE, 'not_found', `${what}: no parameter exists under this path (sources.secrets.ssm.path)`);
}

/** Plain values as the service stores them: SSM's model promises string arrays, but the wire is untrusted. */
function commandParameters(p: Command['Parameters']): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const [k, v] of Object.entries(p ?? {})) {
    out[k] = Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : typeof v === 'string' ? [v] : [];
  }
  return out;
}

function toDate(v: unknown): Date | undefined {
  return isValidDate(v) ? v : undefined;
}

/** One SSM client shared by the SsmSource and the Parameter Store secret backend. */
export class SsmClientHandle {
  readonly client: SSMClient;
  readonly config: SsmConfig;

  constructor(config: SsmConfig) {
    this.config = config;
    this.client = new SSMClient(awsClientConfig(config, SOURCE));
  }

  close(): void {
    this.client.destroy();
  }
}

export class AwsSsmSource implements SsmSource {
  readonly #h: SsmClientHandle;
  readonly path: string;
  readonly deployDocument: string;
  readonly historyMs: number;

  constructor(handle: SsmClientHandle) {
    this.#h = handle;
    this.path = handle.config.path;
    this.deployDocument = handle.config.deploy_document;
    this.historyMs = handle.config.history;
  }

  async *commands(q: { documentName: string; since: Date; signal?: AbortSignal }): AsyncIterable<SsmCommand> {
    const input = {
      Filters: [
        { key: 'DocumentName' as const, value: q.documentName },
        { key: 'InvokedAfter' as const, value: q.since.toISOString() },
      ],
    };
    const found: SsmCommand[] = [];
    const it = paginateListCommands({ client: this.#h.client, pageSize: 50, stopOnSameToken: true }, input);
    for await (const page of pages(`listing commands of ${q.documentName}`, it, q.signal)) {
      for (const c of page.Commands ?? []) {
        const requestedAt = toDate(c.RequestedDateTime);
        if (!c.CommandId || !requestedAt) continue;
        // The filters are pushed down; checking again keeps us right against a server that ignores them.
        if (c.DocumentName !== q.documentName || requestedAt < q.since) continue;
        found.push({
          commandId: c.CommandId,
          documentName: c.DocumentName,
          requestedAt,
          status: c.Status ?? 'Unknown',
          instanceIds: c.InstanceIds ?? [],
          parameters: commandParameters(c.Parameters),
        });
      }
    }
    found.sort((a, b) => b.requestedAt.getTime() - a.requestedAt.getTime());
    yield* found;
  }

  async *outputs(commandId: string, signal?: AbortSignal): AsyncIterable<SsmInvocationOutput> {
    const it = paginateListCommandInvocations({ client: this.#h.client, pageSize: 50, stopOnSameToken: true }, { CommandId: commandId, Details: true });
    // Ids come from SSM's answers: an error names them only when they have their shape.
    const command = untrusted.matching(commandId, COMMAND_ID_SHAPE);
    for await (const page of pages(`listing invocations of command ${command}`, it, signal)) {
      for (const inv of page.CommandInvocations ?? []) {
        const instanceId = inv.InstanceId ?? '';
        for (const plugin of inv.CommandPlugins ?? []) {
          const pluginName = plugin.Name ?? '';
          // The invocation list truncates output to 2,500 characters; GetCommandInvocation holds
          // the first 24,000 of stdout and 8,000 of stderr, so a secret printed late is still seen.
          // It accepts only an instance id of the documented shape: for anything else the
          // listed (truncated) output is all there is.
          let output = plugin.Output ?? '';
          if (INSTANCE_ID_SHAPE.test(instanceId) && pluginName.length >= 4) {
            try {
              const full = await this.#h.client.send(
                new GetCommandInvocationCommand({ CommandId: commandId, InstanceId: instanceId, PluginName: pluginName }),
                { abortSignal: signal },
              );
              output = [full.StandardOutputContent ?? '', full.StandardErrorContent ?? '', output].filter(Boolean).join('\n');
            } catch (e) {
              // Invocation details are eventually consistent; the truncated output still counts.
              if ((e as { name?: string }).name !== 'InvocationDoesNotExist') throw wrapSourceError(SOURCE, `reading output of command ${command}`, e);
            }
          }
          yield { commandId, instanceId, pluginName, output };
        }
      }
    }
  }

  async *parameters(signal?: AbortSignal): AsyncIterable<SsmParameterMeta> {
    const it = paginateDescribeParameters(
      { client: this.#h.client, pageSize: 50, stopOnSameToken: true },
      { ParameterFilters: [{ Key: 'Path', Option: 'Recursive', Values: [this.path] }] },
    );
    const what = `describing parameters under ${this.path}`;
    let seen = 0;
    for await (const page of pages(what, it, signal)) {
      seen += page.Parameters?.length ?? 0;
      for (const p of page.Parameters ?? []) {
        if (!p.Name || !p.Type || !PARAMETER_TYPES.has(p.Type)) continue;
        yield {
          name: p.Name,
          type: p.Type as SsmParameterMeta['type'],
          ...(toDate(p.LastModifiedDate) ? { lastModified: toDate(p.LastModifiedDate) } : {}),
          ...(p.KeyId ? { keyId: p.KeyId } : {}),
        };
      }
    }
    if (seen === 0) throw emptyPath(what);
  }
}

interface StoredParameter {
  name: string;
  value: Secret;
  lastModified?: Date;
  /** SecureString, or named like a secret. */
  secret: boolean;
}

/**
 * Parameter Store as a secret backend: `<path>/<service>/<NAME>`, read once per run with
 * decryption. Secret values are registered with the run's scrubber as they arrive.
 */
export class SsmSecretBackend implements SecretBackend {
  readonly provider = 'ssm' as const;
  readonly #h: SsmClientHandle;
  readonly #known: KnownSecrets;
  readonly #signingService: string;
  #loaded: Promise<Map<string, StoredParameter>> | undefined;

  constructor(handle: SsmClientHandle, signingService: string, known: KnownSecrets) {
    this.#h = handle;
    this.#signingService = signingService;
    this.#known = known;
  }

  #load(): Promise<Map<string, StoredParameter>> {
    this.#loaded ??= (async () => {
      const byName = new Map<string, StoredParameter>();
      const path = this.#h.config.path;
      const it = paginateGetParametersByPath(
        { client: this.#h.client, pageSize: 10, stopOnSameToken: true },
        { Path: path, Recursive: true, WithDecryption: true },
      );
      const what = `reading parameters under ${path}`;
      let seen = 0;
      for await (const page of pages(what, it)) {
        seen += page.Parameters?.length ?? 0;
        for (const p of page.Parameters ?? []) this.#keep(p, byName);
      }
      if (seen === 0) throw emptyPath(what);
      return byName;
    })();
    return this.#loaded;
  }

  #keep(p: Parameter, into: Map<string, StoredParameter>): void {
    if (!p.Name || typeof p.Value !== 'string') return;
    const leaf = p.Name.slice(p.Name.lastIndexOf('/') + 1);
    const secret = p.Type === 'SecureString' || SECRET_NAME_RE.test(leaf);
    if (secret) this.#known.add(p.Value);
    into.set(p.Name, { name: p.Name, value: new Secret(p.Value), lastModified: toDate(p.LastModifiedDate), secret });
  }

  #nameOf(service: string, name: string): string {
    return `${this.#h.config.path.replace(/\/+$/, '')}/${service}/${name}`;
  }

  async holders(name: string, services: readonly string[]): Promise<SecretHolder[]> {
    const all = await this.#load();
    const out: SecretHolder[] = [];
    for (const service of services) {
      const p = all.get(this.#nameOf(service, name));
      if (!p || p.value.length === 0) continue;
      out.push({ service, name, provider: this.provider, origin: `ssm:${p.name}`, value: p.value, ...(p.lastModified ? { lastModified: p.lastModified } : {}) });
    }
    return out;
  }

  async all(services: readonly string[]): Promise<SecretHolder[]> {
    const all = await this.#load();
    const base = this.#h.config.path.replace(/\/+$/, '') + '/';
    const out: SecretHolder[] = [];
    for (const p of all.values()) {
      if (!p.secret || p.value.length === 0 || !p.name.startsWith(base)) continue;
      const rest = p.name.slice(base.length);
      const slash = rest.indexOf('/');
      const service = slash > 0 ? rest.slice(0, slash) : '';
      if (!services.includes(service)) continue;
      const name = rest.slice(rest.lastIndexOf('/') + 1);
      out.push({ service, name, provider: this.provider, origin: `ssm:${p.name}`, value: p.value, ...(p.lastModified ? { lastModified: p.lastModified } : {}) });
    }
    return out;
  }

  async signingKeys(key: SigningKeyName): Promise<SigningKeyHolder[]> {
    const all = await this.#load();
    const p = all.get(this.#nameOf(this.#signingService, SIGNING_KEY_ENV[key]));
    if (!p || p.value.length === 0) return [];
    const origin = `ssm:${p.name}`;
    return [{ key, provider: this.provider, origin, ...publicKeyOfPrivatePem(p.value.reveal(), SOURCE, origin) }];
  }
}
