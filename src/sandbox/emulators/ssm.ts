/**
 * AWS Systems Manager emulator: Parameter Store reads and Run Command history, on the AWS JSON
 * 1.1 wire (wire-protocols.md §A, §B). State is seeded in-process (putParameter, addCommand);
 * clients only ever reach it over HTTP.
 *
 * Timestamps are epoch seconds as JSON numbers, except GetCommandInvocation's Execution*
 * fields, which the model declares as ISO strings.
 */
import { createHash, randomUUID } from 'node:crypto';
import { AwsServiceError, createAwsJsonHandler, type Input, type JsonObject } from './aws-json';
import { FaultController } from './faults';
import { LoopbackListener, type RunningEmulator, type StartOptions } from './listener';
import { checkPolicy, decodeToken, encodeToken, pageOf, type Cursor, type PagingPolicy } from './paging';

export type ParameterType = 'String' | 'StringList' | 'SecureString';

export interface PutParameterInput {
  name: string;
  type: ParameterType;
  /** Plaintext; StringList values are comma-separated without spaces. */
  value: string;
  lastModified?: Date;
  /** SecureString KMS key; default `alias/aws/ssm`. */
  keyId?: string;
  description?: string;
  /** Labels on the version this call creates. */
  labels?: string[];
}

export type CommandStatus = 'Pending' | 'InProgress' | 'Success' | 'Cancelled' | 'Failed' | 'TimedOut' | 'Cancelling';
export type InvocationStatus = CommandStatus | 'Delayed';

export interface SeedInvocation {
  instanceId: string;
  /** The step name, for example `aws:runShellScript`. */
  pluginName: string;
  /** Standard output of the step. */
  output: string;
  /** Standard error of the step. */
  error?: string;
  status?: InvocationStatus;
  responseCode?: number;
  startedAt?: Date;
  endedAt?: Date;
}

export interface AddCommandInput {
  commandId?: string;
  documentName: string;
  /** Exactly as sent: `{{ssm:...}}` references stay literal (they are resolved on the node). */
  parameters: Record<string, string[]>;
  /** A Date, an ISO string, or epoch milliseconds. */
  requestedAt: Date | string | number;
  instanceIds: string[];
  status?: CommandStatus;
  comment?: string;
  cloudWatchLogGroupName?: string;
  /** One per instance and step; default: one `aws:runShellScript` step per instance with empty output. */
  invocations?: SeedInvocation[];
}

export interface SsmEmulatorOptions {
  region?: string;
  accountId?: string;
  /** Paging behaviour per operation (GetParametersByPath, DescribeParameters, ListCommands, ...). */
  paging?: Partial<Record<SsmPagedOperation, PagingPolicy>>;
}

export type SsmPagedOperation =
  | 'GetParametersByPath'
  | 'DescribeParameters'
  | 'ListCommands'
  | 'ListCommandInvocations';

interface ParameterVersion {
  value: string;
  version: number;
  lastModified: Date;
  labels: string[];
}

interface StoredParameter {
  name: string;
  type: ParameterType;
  keyId?: string;
  description?: string;
  versions: ParameterVersion[];
}

interface StoredPlugin {
  name: string;
  output: string;
  error: string;
  status: InvocationStatus;
  responseCode: number;
  startedAt?: Date;
  endedAt?: Date;
}

interface StoredCommand {
  commandId: string;
  documentName: string;
  parameters: Record<string, string[]>;
  requestedAt: Date;
  instanceIds: string[];
  status: CommandStatus;
  comment: string;
  cloudWatchLogGroupName: string;
  /** instanceId -> steps */
  invocations: Map<string, StoredPlugin[]>;
}

const DEFAULT_KEY_ID = 'alias/aws/ssm';
const TERMINAL = new Set<string>(['Success', 'Failed', 'TimedOut', 'Cancelled']);
const INSTANCE_ID = /^(i-(\w{8}|\w{17}))$|^(mi-\w{17})$/;
const MAX_LEVELS = 15;

const epochSeconds = (d: Date): number => d.getTime() / 1000;

function toDate(value: Date | string | number, what: string): Date {
  const d = value instanceof Date ? value : new Date(value);
  if (Number.isNaN(d.getTime())) throw new Error(`${what} is not a valid date: ${String(value)}`);
  return d;
}

/** Java Duration.toString, which is how the service formats ExecutionElapsedTime (`PT0.5S`, `PT1M30S`). */
function isoDuration(ms: number): string {
  const total = Math.max(0, Math.round(ms));
  const h = Math.floor(total / 3_600_000);
  const m = Math.floor((total % 3_600_000) / 60_000);
  const s = (total % 60_000) / 1000;
  if (total === 0) return 'PT0S';
  return `PT${h ? `${h}H` : ''}${m ? `${m}M` : ''}${s ? `${s}S` : ''}`;
}

function statusDetails(status: InvocationStatus): string {
  return status === 'TimedOut' ? 'Execution Timed Out' : status;
}

/** A KMS-looking blob that does not reveal the plaintext (the real service returns ciphertext). */
function fakeCiphertext(keyId: string, p: StoredParameter, v: ParameterVersion): string {
  const digest = (salt: string): Buffer =>
    createHash('sha256').update(`${salt}\0${keyId}\0${p.name}\0${v.version}\0${v.value}`).digest();
  return Buffer.concat([Buffer.from([1, 2, 2, 0, 0x78]), digest('a'), digest('b'), digest('c')]).toString('base64');
}

export class SsmEmulator {
  readonly faults = new FaultController();
  readonly region: string;
  readonly accountId: string;
  private readonly parameters = new Map<string, StoredParameter>();
  private readonly commands = new Map<string, StoredCommand>();
  private readonly paging: Partial<Record<SsmPagedOperation, PagingPolicy>> = {};
  private readonly listener: LoopbackListener;

  constructor(options: SsmEmulatorOptions = {}) {
    this.region = options.region ?? 'us-east-1';
    this.accountId = options.accountId ?? '123456789012';
    for (const [op, policy] of Object.entries(options.paging ?? {})) this.setPaging(op as SsmPagedOperation, policy);
    const handler = createAwsJsonHandler(
      {
        targetPrefix: 'AmazonSSM',
        signingName: 'ssm',
        region: this.region,
        accountId: this.accountId,
        resourceArn: (_op, input) => this.resourceArnFor(input),
        operations: {
          GetParametersByPath: (i) => this.getParametersByPath(i),
          GetParameter: (i) => this.getParameter(i),
          GetParameters: (i) => this.getParameters(i),
          DescribeParameters: (i) => this.describeParameters(i),
          ListCommands: (i) => this.listCommands(i),
          ListCommandInvocations: (i) => this.listCommandInvocations(i),
          GetCommandInvocation: (i) => this.getCommandInvocation(i),
        },
      },
      this.faults,
    );
    this.listener = new LoopbackListener('SSM', handler, this.faults);
  }

  start(options: StartOptions = {}): Promise<RunningEmulator> {
    return this.listener.start(options);
  }

  close(): Promise<void> {
    return this.listener.close();
  }

  setPaging(operation: SsmPagedOperation, policy: PagingPolicy): void {
    this.paging[operation] = checkPolicy(policy);
  }

  // ---- seeding -------------------------------------------------------------------------

  /** Create a parameter or add a version to it (like PutParameter with Overwrite). Returns the version. */
  putParameter(input: PutParameterInput): number {
    const existing = this.parameters.get(input.name);
    const param: StoredParameter = existing ?? { name: input.name, type: input.type, versions: [] };
    param.type = input.type;
    if (input.type === 'SecureString') param.keyId = input.keyId ?? param.keyId ?? DEFAULT_KEY_ID;
    else delete param.keyId;
    if (input.description !== undefined) param.description = input.description;
    const version = param.versions.length + 1;
    const labels = input.labels ?? [];
    // A label names one version at a time, as in the real service.
    for (const v of param.versions) v.labels = v.labels.filter((l) => !labels.includes(l));
    param.versions.push({ value: input.value, version, lastModified: input.lastModified ?? new Date(), labels });
    this.parameters.set(input.name, param);
    return version;
  }

  deleteParameter(name: string): boolean {
    return this.parameters.delete(name);
  }

  /** Record a Run Command invocation as if SendCommand had run. Returns the command id. */
  addCommand(input: AddCommandInput): string {
    const commandId = input.commandId ?? randomUUID();
    if (commandId.length !== 36) throw new Error(`commandId must be 36 characters, got ${commandId}`);
    const requestedAt = toDate(input.requestedAt, 'requestedAt');
    const status = input.status ?? 'Success';
    const seeds: SeedInvocation[] =
      input.invocations ?? input.instanceIds.map((instanceId) => ({ instanceId, pluginName: 'aws:runShellScript', output: '' }));
    const invocations = new Map<string, StoredPlugin[]>();
    for (const id of input.instanceIds) invocations.set(id, []);
    for (const seed of seeds) {
      const pluginStatus = seed.status ?? (status === 'Cancelling' ? 'InProgress' : status);
      const started = TERMINAL.has(pluginStatus) || pluginStatus === 'InProgress';
      const startedAt = seed.startedAt ?? (started ? new Date(requestedAt.getTime() + 1000) : undefined);
      const endedAt =
        seed.endedAt ?? (TERMINAL.has(pluginStatus) && startedAt ? new Date(startedAt.getTime() + 1500) : undefined);
      const list = invocations.get(seed.instanceId) ?? [];
      list.push({
        name: seed.pluginName,
        output: seed.output,
        error: seed.error ?? '',
        status: pluginStatus,
        responseCode: seed.responseCode ?? (pluginStatus === 'Success' ? 0 : TERMINAL.has(pluginStatus) ? 1 : -1),
        startedAt,
        endedAt,
      });
      invocations.set(seed.instanceId, list);
    }
    this.commands.set(commandId, {
      commandId,
      documentName: input.documentName,
      parameters: structuredClone(input.parameters),
      requestedAt,
      instanceIds: [...invocations.keys()],
      status,
      comment: input.comment ?? '',
      cloudWatchLogGroupName: input.cloudWatchLogGroupName ?? '',
      invocations,
    });
    return commandId;
  }

  // ---- helpers --------------------------------------------------------------------------

  private arn(name: string): string {
    return `arn:aws:ssm:${this.region}:${this.accountId}:parameter/${name.replace(/^\//, '')}`;
  }

  private resourceArnFor(input: Input): string {
    const safe = (m: string): string | undefined => {
      try {
        return input.string(m);
      } catch {
        return undefined;
      }
    };
    const name = safe('Path') ?? safe('Name');
    if (name) return this.arn(name);
    return `arn:aws:ssm:${this.region}:${this.accountId}:*`;
  }

  private policy(op: SsmPagedOperation): PagingPolicy {
    return this.paging[op] ?? {};
  }

  private cursor(op: string, input: Input): Cursor | undefined {
    const token = input.string('NextToken');
    if (token === undefined) return undefined;
    const cursor = decodeToken(op, token);
    if (!cursor) throw new AwsServiceError('InvalidNextToken', 'The specified token is not valid.', { messageKey: 'Message' });
    return cursor;
  }

  private parameterOut(p: StoredParameter, v: ParameterVersion, decrypt: boolean, selector?: string): JsonObject {
    const out: JsonObject = {
      Name: p.name,
      Type: p.type,
      Value: p.type === 'SecureString' && !decrypt ? fakeCiphertext(p.keyId ?? DEFAULT_KEY_ID, p, v) : v.value,
      Version: v.version,
      LastModifiedDate: epochSeconds(v.lastModified),
      ARN: this.arn(p.name),
      DataType: 'text',
    };
    if (selector !== undefined) out.Selector = selector;
    return out;
  }

  private latest(p: StoredParameter): ParameterVersion {
    const v = p.versions[p.versions.length - 1];
    if (!v) throw new Error(`parameter ${p.name} has no versions`);
    return v;
  }

  private sortedParameters(): StoredParameter[] {
    return [...this.parameters.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  // ---- Parameter Store ------------------------------------------------------------------

  private getParametersByPath(input: Input): JsonObject {
    const path = input.string('Path', { required: true, min: 1, max: 2048 }) ?? '/';
    const recursive = input.boolean('Recursive');
    const decrypt = input.boolean('WithDecryption');
    const limit = input.integer('MaxResults', { min: 1, max: 10 }) ?? 10;
    const filters = input.objectList('ParameterFilters', { max: 50 }) ?? [];
    if (!path.startsWith('/')) {
      throw new AwsServiceError(
        'ValidationException',
        'The parameter doesn\'t meet the parameter name requirements. The parameter name must begin with a forward slash "/".',
      );
    }
    const base = path.replace(/\/+$/, '');
    if (base.split('/').length - 1 > MAX_LEVELS) {
      throw new AwsServiceError('ValidationException', `The hierarchy can have a maximum of ${MAX_LEVELS} levels.`);
    }
    const cursor = this.cursor('GetParametersByPath', input);
    const matchers = filters.map((f) => this.parameterFilter(f, ['Type', 'KeyId', 'Label']));
    const selected: JsonObject[] = [];
    for (const p of this.sortedParameters()) {
      if (!p.name.startsWith(`${base}/`)) continue;
      if (!recursive && p.name.lastIndexOf('/') !== base.length) continue;
      let version: ParameterVersion | undefined = this.latest(p);
      for (const m of matchers) {
        version = m(p, version);
        if (!version) break;
      }
      if (version) selected.push(this.parameterOut(p, version, decrypt));
    }
    const page = pageOf(selected, limit, cursor, this.policy('GetParametersByPath'));
    return withToken({ Parameters: page.items }, 'NextToken', 'GetParametersByPath', page.next);
  }

  /**
   * A ParameterStringFilter as a function that keeps or drops a parameter. It returns the version
   * to report (a Label filter selects the labelled version) or undefined to drop it.
   */
  private parameterFilter(
    filter: Input,
    allowedKeys: readonly string[],
  ): (p: StoredParameter, v: ParameterVersion) => ParameterVersion | undefined {
    const key = filter.string('Key', { required: true, min: 1, max: 132 }) ?? '';
    // An omitted Option means Equals, except for Path, where it means OneLevel.
    const option = filter.string('Option', { min: 1, max: 10 }) ?? (key === 'Path' ? 'OneLevel' : 'Equals');
    const values = filter.stringList('Values', { min: 1, max: 50 }) ?? [];
    const isTag = key.startsWith('tag:');
    if (!isTag && !allowedKeys.includes(key)) throw new AwsServiceError('InvalidFilterKey');
    const allowedOptions: Record<string, readonly string[]> = {
      Name: ['Equals', 'BeginsWith', 'Contains'],
      Path: ['Recursive', 'OneLevel'],
      Label: ['Equals'],
    };
    const options = allowedOptions[key] ?? ['Equals', 'BeginsWith'];
    if (!options.includes(option)) {
      throw new AwsServiceError(
        'InvalidFilterOption',
        `The filter option "${option}" is not valid. Valid options are: [${options.join(', ')}].`,
      );
    }
    const text = (actual: string | undefined): boolean =>
      actual !== undefined &&
      values.some((want) =>
        option === 'BeginsWith' ? actual.startsWith(want) : option === 'Contains' ? actual.includes(want) : actual === want,
      );
    if (isTag) return () => undefined; // the emulator stores no tags, so a tag filter matches nothing
    switch (key) {
      case 'Type':
        return (p, v) => (text(p.type) ? v : undefined);
      case 'KeyId':
        return (p, v) => (text(p.keyId) ? v : undefined);
      case 'Tier':
        return (_p, v) => (text('Standard') ? v : undefined);
      case 'DataType':
        return (_p, v) => (text('text') ? v : undefined);
      case 'Name':
        // Values may be given with or without the leading slash.
        return (p, v) => (text(p.name) || text(p.name.replace(/^\//, '')) ? v : undefined);
      case 'Path':
        return (p, v) =>
          values.some((want) => {
            const base = want.replace(/\/+$/, '');
            if (!p.name.startsWith(`${base}/`)) return false;
            return option === 'Recursive' || p.name.lastIndexOf('/') === base.length;
          })
            ? v
            : undefined;
      case 'Label':
        return (p) => p.versions.find((ver) => ver.labels.some((l) => values.includes(l)));
      default:
        throw new AwsServiceError('InvalidFilterKey');
    }
  }

  /** `name`, `name:3` or `name:label`. */
  private resolve(selector: string): { p: StoredParameter; v: ParameterVersion; sel?: string } | undefined {
    const colon = selector.lastIndexOf(':');
    const name = colon > 0 ? selector.slice(0, colon) : selector;
    const sel = colon > 0 ? selector.slice(colon) : undefined;
    const p = this.parameters.get(name);
    if (!p) return undefined;
    if (!sel) return { p, v: this.latest(p) };
    const ref = sel.slice(1);
    const v = /^\d+$/.test(ref)
      ? p.versions.find((x) => x.version === Number(ref))
      : p.versions.find((x) => x.labels.includes(ref));
    if (!v) return undefined;
    return { p, v, sel };
  }

  private getParameter(input: Input): JsonObject {
    const name = input.string('Name', { required: true, min: 1, max: 2048 }) ?? '';
    const decrypt = input.boolean('WithDecryption');
    const found = this.resolve(name);
    if (!found) {
      const colon = name.lastIndexOf(':');
      if (colon > 0 && this.parameters.has(name.slice(0, colon))) {
        throw new AwsServiceError(
          'ParameterVersionNotFound',
          `Systems Manager could not find version ${name.slice(colon + 1)} of ${name.slice(0, colon)}. Verify the version and try again.`,
        );
      }
      throw new AwsServiceError('ParameterNotFound', `Parameter ${name} not found.`);
    }
    return { Parameter: this.parameterOut(found.p, found.v, decrypt, found.sel) };
  }

  private getParameters(input: Input): JsonObject {
    const names = input.stringList('Names', { min: 1, max: 10 });
    if (!names) {
      throw new AwsServiceError(
        'ValidationException',
        "1 validation error detected: Value null at 'names' failed to satisfy constraint: Member must not be null",
      );
    }
    const decrypt = input.boolean('WithDecryption');
    const parameters: JsonObject[] = [];
    const invalid: string[] = [];
    for (const n of new Set(names)) {
      const found = this.resolve(n);
      if (found) parameters.push(this.parameterOut(found.p, found.v, decrypt, found.sel));
      else invalid.push(n);
    }
    return { Parameters: parameters, InvalidParameters: invalid };
  }

  private describeParameters(input: Input): JsonObject {
    const limit = input.integer('MaxResults', { min: 1, max: 50 }) ?? 50;
    const legacy = input.objectList('Filters', { max: 50 });
    const filters = input.objectList('ParameterFilters', { max: 50 });
    if (legacy && filters) {
      throw new AwsServiceError(
        'ValidationException',
        'You can use either Filters or ParameterFilters in a single request.',
      );
    }
    const cursor = this.cursor('DescribeParameters', input);
    const keys = ['Name', 'Type', 'KeyId', 'Path', 'Tier', 'DataType'];
    const matchers = (filters ?? []).map((f) => this.parameterFilter(f, keys));
    const legacyMatchers = (legacy ?? []).map((f) => this.legacyFilter(f));
    const selected: JsonObject[] = [];
    for (const p of this.sortedParameters()) {
      const v = this.latest(p);
      if (!matchers.every((m) => m(p, v)) || !legacyMatchers.every((m) => m(p))) continue;
      const meta: JsonObject = {
        Name: p.name,
        ARN: this.arn(p.name),
        Type: p.type,
        LastModifiedDate: epochSeconds(v.lastModified),
        LastModifiedUser: `arn:aws:iam::${this.accountId}:user/aegis-sandbox`,
        Version: v.version,
        Tier: 'Standard',
        Policies: [],
        DataType: 'text',
      };
      if (p.keyId) meta.KeyId = p.keyId;
      if (p.description !== undefined) meta.Description = p.description;
      selected.push(meta);
    }
    const page = pageOf(selected, limit, cursor, this.policy('DescribeParameters'));
    return withToken({ Parameters: page.items }, 'NextToken', 'DescribeParameters', page.next);
  }

  /** The deprecated `Filters` member: Name matches by prefix, Type and KeyId exactly. */
  private legacyFilter(filter: Input): (p: StoredParameter) => boolean {
    const key = filter.string('Key', { required: true }) ?? '';
    const values = filter.stringList('Values', { min: 1, max: 50 }) ?? [];
    switch (key) {
      case 'Name':
        return (p) => values.some((v) => p.name.startsWith(v));
      case 'Type':
        return (p) => values.includes(p.type);
      case 'KeyId':
        return (p) => p.keyId !== undefined && values.includes(p.keyId);
      default:
        throw new AwsServiceError('InvalidFilterKey');
    }
  }

  // ---- Run Command -----------------------------------------------------------------------

  private commandIdInput(input: Input): string | undefined {
    return input.string('CommandId', { min: 36, max: 36 });
  }

  private instanceIdInput(input: Input, required = false): string | undefined {
    const id = input.string('InstanceId', { required });
    if (id !== undefined && !INSTANCE_ID.test(id)) {
      throw new AwsServiceError(
        'ValidationException',
        `1 validation error detected: Value '${id}' at 'instanceId' failed to satisfy constraint: Member must satisfy regular expression pattern: ^(i-(\\w{8}|\\w{17}))|(mi-\\w{17})$`,
      );
    }
    return id;
  }

  /** CommandFilter list (lower-case `key`/`value`) as a predicate on (command, status to test). */
  private commandFilters(input: Input, forInvocations: boolean): (c: StoredCommand, status: string) => boolean {
    const filters = input.objectList('Filters', { min: 1, max: 5 }) ?? [];
    const tests = filters.map((f): ((c: StoredCommand, status: string) => boolean) => {
      const key = f.string('key', { required: true }) ?? '';
      const value = f.string('value', { required: true, min: 1, max: 128 }) ?? '';
      const date = (): number => {
        const t = Date.parse(value);
        if (Number.isNaN(t)) {
          throw new AwsServiceError('InvalidFilterValue', `The filter value "${value}" is not a valid timestamp.`, {
            messageKey: 'Message',
          });
        }
        return t;
      };
      switch (key) {
        case 'InvokedAfter': {
          const t = date();
          return (c) => c.requestedAt.getTime() >= t;
        }
        case 'InvokedBefore': {
          const t = date();
          return (c) => c.requestedAt.getTime() <= t;
        }
        case 'Status':
          return (_c, status) => status === value;
        case 'DocumentName':
          return (c) => c.documentName === value;
        case 'ExecutionStage':
          if (forInvocations) throw new AwsServiceError('InvalidFilterKey');
          if (value !== 'Executing' && value !== 'Complete') {
            throw new AwsServiceError('InvalidFilterValue', `The filter value "${value}" is not valid.`, {
              messageKey: 'Message',
            });
          }
          return (c) => (value === 'Complete') === TERMINAL.has(c.status);
        default:
          throw new AwsServiceError('InvalidFilterKey');
      }
    });
    return (c, status) => tests.every((t) => t(c, status));
  }

  /** Newest first, as the console and the API list them. */
  private sortedCommands(): StoredCommand[] {
    return [...this.commands.values()].sort((a, b) => b.requestedAt.getTime() - a.requestedAt.getTime());
  }

  private commandOut(c: StoredCommand): JsonObject {
    const plugins = [...c.invocations.values()];
    const done = plugins.filter((ps) => ps.every((p) => TERMINAL.has(p.status)));
    const failed = plugins.filter((ps) => ps.some((p) => p.status === 'Failed' || p.status === 'TimedOut'));
    return {
      CommandId: c.commandId,
      DocumentName: c.documentName,
      DocumentVersion: '$DEFAULT',
      Comment: c.comment,
      ExpiresAfter: epochSeconds(c.requestedAt) + 3600,
      Parameters: structuredClone(c.parameters),
      InstanceIds: [...c.instanceIds],
      Targets: [],
      RequestedDateTime: epochSeconds(c.requestedAt),
      Status: c.status,
      StatusDetails: statusDetails(c.status),
      OutputS3Region: this.region,
      OutputS3BucketName: '',
      OutputS3KeyPrefix: '',
      MaxConcurrency: '50',
      MaxErrors: '0',
      TargetCount: c.instanceIds.length,
      CompletedCount: done.length,
      ErrorCount: failed.length,
      DeliveryTimedOutCount: 0,
      ServiceRole: '',
      NotificationConfig: { NotificationArn: '', NotificationEvents: [], NotificationType: '' },
      CloudWatchOutputConfig: {
        CloudWatchLogGroupName: c.cloudWatchLogGroupName,
        CloudWatchOutputEnabled: c.cloudWatchLogGroupName !== '',
      },
      TimeoutSeconds: 3600,
    };
  }

  private listCommands(input: Input): JsonObject {
    const commandId = this.commandIdInput(input);
    const instanceId = this.instanceIdInput(input);
    const limit = input.integer('MaxResults', { min: 1, max: 50 }) ?? 50;
    const matches = this.commandFilters(input, false);
    const cursor = this.cursor('ListCommands', input);
    if (commandId !== undefined && !this.commands.has(commandId)) throw new AwsServiceError('InvalidCommandId');
    const selected = this.sortedCommands()
      .filter((c) => commandId === undefined || c.commandId === commandId)
      .filter((c) => instanceId === undefined || c.instanceIds.includes(instanceId))
      .filter((c) => matches(c, c.status))
      .map((c) => this.commandOut(c));
    const page = pageOf(selected, limit, cursor, this.policy('ListCommands'));
    return withToken({ Commands: page.items }, 'NextToken', 'ListCommands', page.next);
  }

  private invocationStatus(plugins: StoredPlugin[]): InvocationStatus {
    if (plugins.length === 0) return 'Pending'; // an instance with no steps recorded yet
    return plugins.find((p) => p.status !== 'Success')?.status ?? 'Success';
  }

  private listCommandInvocations(input: Input): JsonObject {
    const commandId = this.commandIdInput(input);
    const instanceId = this.instanceIdInput(input);
    const limit = input.integer('MaxResults', { min: 1, max: 50 }) ?? 50;
    const details = input.boolean('Details');
    const matches = this.commandFilters(input, true);
    const cursor = this.cursor('ListCommandInvocations', input);
    const selected: JsonObject[] = [];
    for (const c of this.sortedCommands()) {
      if (commandId !== undefined && c.commandId !== commandId) continue;
      for (const [iid, plugins] of c.invocations) {
        if (instanceId !== undefined && iid !== instanceId) continue;
        const status = this.invocationStatus(plugins);
        if (!matches(c, status)) continue;
        selected.push({
          CommandId: c.commandId,
          InstanceId: iid,
          InstanceName: '',
          Comment: c.comment,
          DocumentName: c.documentName,
          DocumentVersion: '$DEFAULT',
          RequestedDateTime: epochSeconds(c.requestedAt),
          Status: status,
          StatusDetails: statusDetails(status),
          StandardOutputUrl: '',
          StandardErrorUrl: '',
          CommandPlugins: details ? plugins.map((p) => this.pluginOut(p)) : [],
          ServiceRole: '',
          NotificationConfig: { NotificationArn: '', NotificationEvents: [], NotificationType: '' },
          CloudWatchOutputConfig: {
            CloudWatchLogGroupName: c.cloudWatchLogGroupName,
            CloudWatchOutputEnabled: c.cloudWatchLogGroupName !== '',
          },
        });
      }
    }
    const page = pageOf(selected, limit, cursor, this.policy('ListCommandInvocations'));
    return withToken({ CommandInvocations: page.items }, 'NextToken', 'ListCommandInvocations', page.next);
  }

  private pluginOut(p: StoredPlugin): JsonObject {
    const out: JsonObject = {
      Name: p.name,
      Status: p.status,
      StatusDetails: statusDetails(p.status),
      ResponseCode: p.responseCode,
      // CommandPluginOutput is capped at 2500 characters by the model.
      Output: p.output.slice(0, 2500),
      StandardOutputUrl: '',
      StandardErrorUrl: '',
      OutputS3Region: this.region,
      OutputS3BucketName: '',
      OutputS3KeyPrefix: '',
    };
    if (p.startedAt) out.ResponseStartDateTime = epochSeconds(p.startedAt);
    if (p.endedAt) out.ResponseFinishDateTime = epochSeconds(p.endedAt);
    return out;
  }

  private getCommandInvocation(input: Input): JsonObject {
    const commandId = input.string('CommandId', { required: true, min: 36, max: 36 }) ?? '';
    const instanceId = this.instanceIdInput(input, true) ?? '';
    const pluginName = input.string('PluginName', { min: 4 });
    const command = this.commands.get(commandId);
    const plugins = command?.invocations.get(instanceId);
    if (!command || !plugins || plugins.length === 0) throw new AwsServiceError('InvocationDoesNotExist');
    // Without a PluginName the first step is reported (documents with one step need no name).
    const plugin = pluginName === undefined ? plugins[0] : plugins.find((p) => p.name === pluginName);
    if (!plugin) throw new AwsServiceError('InvalidPluginName');
    const finished = TERMINAL.has(plugin.status);
    return {
      CommandId: command.commandId,
      InstanceId: instanceId,
      Comment: command.comment,
      DocumentName: command.documentName,
      DocumentVersion: '$DEFAULT',
      PluginName: plugin.name,
      ResponseCode: plugin.responseCode,
      ExecutionStartDateTime: plugin.startedAt ? plugin.startedAt.toISOString() : '',
      ExecutionElapsedTime:
        plugin.startedAt && plugin.endedAt ? isoDuration(plugin.endedAt.getTime() - plugin.startedAt.getTime()) : '',
      ExecutionEndDateTime: plugin.endedAt ? plugin.endedAt.toISOString() : '',
      Status: plugin.status,
      StatusDetails: statusDetails(plugin.status),
      StandardOutputContent: finished ? plugin.output.slice(0, 24000) : '',
      StandardOutputUrl: '',
      StandardErrorContent: finished ? plugin.error.slice(0, 8000) : '',
      StandardErrorUrl: '',
      CloudWatchOutputConfig: {
        CloudWatchLogGroupName: command.cloudWatchLogGroupName,
        CloudWatchOutputEnabled: command.cloudWatchLogGroupName !== '',
      },
    };
  }
}

function withToken(body: JsonObject, member: string, operation: string, next: Cursor | undefined): JsonObject {
  if (next) body[member] = encodeToken(operation, next);
  return body;
}
