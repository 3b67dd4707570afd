import {
  DescribeParametersCommand,
  GetCommandInvocationCommand,
  GetParameterCommand,
  GetParametersByPathCommand,
  GetParametersCommand,
  ListCommandsCommand,
  paginateDescribeParameters,
  paginateGetParametersByPath,
  paginateListCommandInvocations,
  paginateListCommands,
  type Command,
  type DescribeParametersCommandInput,
  type GetParametersByPathCommandInput,
  type ListCommandsCommandInput,
  type CommandInvocation,
  type Parameter,
  type ParameterMetadata,
  type SSMClient,
} from '@aws-sdk/client-ssm';
import { SsmEmulator, type RunningEmulator } from '../../src/sandbox/emulators';
import { awsPost, httpStatus, rejection, ssmClient } from './clients';

const T0 = new Date('2024-07-07T10:00:00.250Z');

let emu: SsmEmulator;
let running: RunningEmulator;
let ssm: SSMClient;

function seed(e: SsmEmulator): void {
  e.putParameter({ name: '/aegis/prod/db/url', type: 'String', value: 'postgres://db', lastModified: T0 });
  e.putParameter({ name: '/aegis/prod/db/password', type: 'SecureString', value: 'hunter2', lastModified: T0 });
  e.putParameter({
    name: '/aegis/prod/signing/key',
    type: 'SecureString',
    value: 'PRIVATE',
    keyId: 'alias/aegis',
    lastModified: T0,
  });
  e.putParameter({ name: '/aegis/prod/hosts', type: 'StringList', value: 'a,b,c', lastModified: T0 });
  e.putParameter({ name: '/aegis/prod/level', type: 'String', value: 'info', lastModified: T0, labels: ['stable'] });
  e.putParameter({ name: '/aegis/prod/level', type: 'String', value: 'debug', lastModified: T0 });
  for (let i = 0; i < 7; i += 1) {
    e.putParameter({ name: `/aegis/prod/flags/f${i}`, type: 'String', value: String(i), lastModified: T0 });
  }
  e.putParameter({ name: '/aegis/staging/db/url', type: 'String', value: 'postgres://staging', lastModified: T0 });
}

beforeEach(async () => {
  emu = new SsmEmulator();
  seed(emu);
  running = await emu.start({ port: 0 });
  ssm = ssmClient(running.url);
});

afterEach(async () => {
  ssm.destroy();
  await running.close();
});

async function allByPath(input: GetParametersByPathCommandInput): Promise<Parameter[]> {
  const out: Parameter[] = [];
  for await (const page of paginateGetParametersByPath({ client: ssm }, input)) out.push(...(page.Parameters ?? []));
  return out;
}

describe('GetParametersByPath', () => {
  it('returns one level by default and the whole tree with Recursive, across pages of MaxResults', async () => {
    const oneLevel = await allByPath({ Path: '/aegis/prod', MaxResults: 2 });
    expect(oneLevel.map((p) => p.Name)).toEqual([
      '/aegis/prod/hosts',
      '/aegis/prod/level',
    ]);
    const tree = await allByPath({ Path: '/aegis/prod/', Recursive: true, MaxResults: 3 });
    expect(tree).toHaveLength(12);
    expect(tree.every((p) => p.Name?.startsWith('/aegis/prod/'))).toBe(true);
    // 12 items in pages of 3.
    expect(emu.faults.requestCount('GetParametersByPath')).toBe(1 + 4);
  });

  it('sends epoch seconds that the SDK turns into Dates, the ARN without a doubled slash, and versions', async () => {
    const [level] = await allByPath({ Path: '/aegis/prod', ParameterFilters: [{ Key: 'Type', Values: ['String'] }] });
    expect(level?.Name).toBe('/aegis/prod/level');
    expect(level?.LastModifiedDate).toBeInstanceOf(Date);
    expect(level?.LastModifiedDate?.toISOString()).toBe(T0.toISOString());
    expect(level?.ARN).toBe('arn:aws:ssm:us-east-1:123456789012:parameter/aegis/prod/level');
    expect(level?.Version).toBe(2);
    expect(level?.Value).toBe('debug');
  });

  it('returns ciphertext, not plaintext, for SecureString unless WithDecryption is true', async () => {
    const enc = await allByPath({ Path: '/aegis/prod/db' });
    const pw = enc.find((p) => p.Name === '/aegis/prod/db/password');
    expect(pw?.Type).toBe('SecureString');
    expect(pw?.Value).toBeDefined();
    expect(pw?.Value).not.toContain('hunter2');
    expect(Buffer.from(pw?.Value ?? '', 'base64').length).toBeGreaterThan(32);
    const dec = await allByPath({ Path: '/aegis/prod/db', WithDecryption: true });
    expect(dec.find((p) => p.Name === '/aegis/prod/db/password')?.Value).toBe('hunter2');
  });

  it('filters by Type, KeyId and Label, and rejects other keys with InvalidFilterKey', async () => {
    const byKey = await allByPath({
      Path: '/aegis',
      Recursive: true,
      ParameterFilters: [{ Key: 'KeyId', Option: 'Equals', Values: ['alias/aegis'] }],
    });
    expect(byKey.map((p) => p.Name)).toEqual(['/aegis/prod/signing/key']);
    const byLabel = await allByPath({
      Path: '/aegis/prod',
      ParameterFilters: [{ Key: 'Label', Values: ['stable'] }],
    });
    expect(byLabel.map((p) => [p.Name, p.Value, p.Version])).toEqual([['/aegis/prod/level', 'info', 1]]);
    const err = await rejection(
      ssm.send(new GetParametersByPathCommand({ Path: '/aegis', ParameterFilters: [{ Key: 'Name', Values: ['x'] }] })),
    );
    expect(err.name).toBe('InvalidFilterKey');
  });

  it('rejects MaxResults outside 1..10 with a ValidationException (the SDK does not check)', async () => {
    const err = await rejection(ssm.send(new GetParametersByPathCommand({ Path: '/aegis', MaxResults: 50 })));
    expect(err.name).toBe('ValidationException');
    expect(err.$fault).toBe('client');
    expect(httpStatus(err)).toBe(400);
    expect(err.message).toContain("at 'maxResults' failed to satisfy constraint");
    const zero = await rejection(ssm.send(new GetParametersByPathCommand({ Path: '/aegis', MaxResults: 0 })));
    expect(zero.name).toBe('ValidationException');
  });

  it('returns an empty list for an unknown path', async () => {
    const out = await ssm.send(new GetParametersByPathCommand({ Path: '/nothing/here' }));
    expect(out.Parameters).toEqual([]);
    expect(out.NextToken).toBeUndefined();
  });

  it('pages best effort when configured: empty pages with a token, small pages, an empty last page', async () => {
    emu.setPaging('GetParametersByPath', { maxPageSize: 2, emptyPageEvery: 2, trailingEmptyPage: true });
    const pages: number[] = [];
    for await (const page of paginateGetParametersByPath({ client: ssm }, { Path: '/aegis/prod/flags', MaxResults: 10 })) {
      pages.push(page.Parameters?.length ?? -1);
    }
    expect(pages).toEqual([2, 0, 2, 0, 2, 0, 1, 0]);
    expect(pages.reduce((a, b) => a + b, 0)).toBe(7);
  });

  it('rejects a token it did not issue with InvalidNextToken', async () => {
    const err = await rejection(ssm.send(new GetParametersByPathCommand({ Path: '/aegis', NextToken: 'garbage' })));
    expect(err.name).toBe('InvalidNextToken');
  });
});

describe('GetParameter and GetParameters', () => {
  it('reads by name, by name:version and name:label', async () => {
    const latest = await ssm.send(new GetParameterCommand({ Name: '/aegis/prod/level' }));
    expect(latest.Parameter?.Value).toBe('debug');
    expect(latest.Parameter?.Selector).toBeUndefined();
    const v1 = await ssm.send(new GetParameterCommand({ Name: '/aegis/prod/level:1' }));
    expect([v1.Parameter?.Value, v1.Parameter?.Selector]).toEqual(['info', ':1']);
    const label = await ssm.send(new GetParameterCommand({ Name: '/aegis/prod/level:stable' }));
    expect(label.Parameter?.Version).toBe(1);
    const secret = await ssm.send(new GetParameterCommand({ Name: '/aegis/prod/db/password', WithDecryption: true }));
    expect(secret.Parameter?.Value).toBe('hunter2');
  });

  it('fails with ParameterNotFound (400, client fault) for an unknown name', async () => {
    const err = await rejection(ssm.send(new GetParameterCommand({ Name: '/nope' })));
    expect(err.name).toBe('ParameterNotFound');
    expect(err.$fault).toBe('client');
    expect(httpStatus(err)).toBe(400);
    const v9 = await rejection(ssm.send(new GetParameterCommand({ Name: '/aegis/prod/level:9' })));
    expect(v9.name).toBe('ParameterVersionNotFound');
  });

  it('reports unknown names of GetParameters in InvalidParameters', async () => {
    const out = await ssm.send(new GetParametersCommand({ Names: ['/aegis/prod/db/url', '/missing'] }));
    expect(out.Parameters?.map((p) => p.Name)).toEqual(['/aegis/prod/db/url']);
    expect(out.InvalidParameters).toEqual(['/missing']);
  });
});

describe('DescribeParameters', () => {
  async function all(input: DescribeParametersCommandInput): Promise<ParameterMetadata[]> {
    const out: ParameterMetadata[] = [];
    for await (const page of paginateDescribeParameters({ client: ssm }, input)) out.push(...(page.Parameters ?? []));
    return out;
  }

  it('lists metadata without values, filtered by Path (OneLevel/Recursive), Name and Type', async () => {
    const recursive = await all({ ParameterFilters: [{ Key: 'Path', Option: 'Recursive', Values: ['/aegis/prod'] }] });
    expect(recursive).toHaveLength(12);
    expect(recursive.every((p) => !('Value' in p))).toBe(true);
    const oneLevel = await all({ ParameterFilters: [{ Key: 'Path', Values: ['/aegis/prod'] }] });
    expect(oneLevel.map((p) => p.Name)).toEqual(['/aegis/prod/hosts', '/aegis/prod/level']);
    const secure = await all({
      ParameterFilters: [
        { Key: 'Name', Option: 'BeginsWith', Values: ['/aegis/prod/'] },
        { Key: 'Type', Values: ['SecureString'] },
      ],
      MaxResults: 1,
    });
    expect(secure.map((p) => [p.Name, p.KeyId])).toEqual([
      ['/aegis/prod/db/password', 'alias/aws/ssm'],
      ['/aegis/prod/signing/key', 'alias/aegis'],
    ]);
    expect(secure[0]?.LastModifiedDate).toBeInstanceOf(Date);
  });

  it('pages through empty pages that carry a token', async () => {
    emu.setPaging('DescribeParameters', { emptyPageEvery: 2 });
    const names = (await all({ MaxResults: 5 })).map((p) => p.Name);
    expect(names).toHaveLength(13);
    expect(new Set(names).size).toBe(13);
    // pages: 5, empty, 5, empty, 3
    expect(emu.faults.requestCount('DescribeParameters')).toBe(5);
  });

  it('rejects MaxResults 51 and a Label filter', async () => {
    const err = await rejection(ssm.send(new DescribeParametersCommand({ MaxResults: 51 })));
    expect(err.name).toBe('ValidationException');
    const label = await rejection(
      ssm.send(new DescribeParametersCommand({ ParameterFilters: [{ Key: 'Label', Values: ['x'] }] })),
    );
    expect(label.name).toBe('InvalidFilterKey');
  });
});

describe('Run Command history', () => {
  const INSTANCE = 'i-0123456789abcdef0';
  const OTHER = 'i-0fedcba9876543210';
  let deployId: string;

  beforeEach(() => {
    deployId = emu.addCommand({
      documentName: 'AWS-RunShellScript',
      parameters: { commands: ['export DB_PASSWORD={{ssm:/aegis/prod/db/password}}', 'systemctl restart aegis'] },
      requestedAt: '2024-07-07T10:00:00Z',
      instanceIds: [INSTANCE, OTHER],
      invocations: [
        { instanceId: INSTANCE, pluginName: 'aws:runShellScript', output: 'x'.repeat(30000), status: 'Success' },
        { instanceId: OTHER, pluginName: 'aws:runShellScript', output: 'boom', status: 'Failed' },
      ],
      status: 'Failed',
    });
    emu.addCommand({
      documentName: 'AWS-UpdateSSMAgent',
      parameters: {},
      requestedAt: new Date('2024-07-01T00:00:00Z'),
      instanceIds: [INSTANCE],
    });
    for (let i = 0; i < 4; i += 1) {
      emu.addCommand({
        documentName: 'AWS-RunShellScript',
        parameters: { commands: [`echo ${i}`] },
        requestedAt: Date.parse('2024-06-01T00:00:00Z') + i * 60_000,
        instanceIds: [INSTANCE],
      });
    }
  });

  async function commands(input: ListCommandsCommandInput): Promise<Command[]> {
    const out: Command[] = [];
    for await (const page of paginateListCommands({ client: ssm }, input)) out.push(...(page.Commands ?? []));
    return out;
  }

  it('lists commands newest first, with Dates and the parameters exactly as sent', async () => {
    const all = await commands({ MaxResults: 2 });
    expect(all).toHaveLength(6);
    expect(emu.faults.requestCount('ListCommands')).toBe(3);
    const first = all[0];
    expect(first?.CommandId).toBe(deployId);
    expect(first?.RequestedDateTime).toBeInstanceOf(Date);
    expect(first?.RequestedDateTime?.toISOString()).toBe('2024-07-07T10:00:00.000Z');
    expect(first?.Parameters?.commands?.[0]).toBe('export DB_PASSWORD={{ssm:/aegis/prod/db/password}}');
    expect([first?.Status, first?.TargetCount, first?.CompletedCount, first?.ErrorCount]).toEqual(['Failed', 2, 2, 1]);
  });

  it('applies the lower-case key/value filters', async () => {
    const after = await commands({ Filters: [{ key: 'InvokedAfter', value: '2024-07-01T00:00:00Z' }] });
    expect(after).toHaveLength(2);
    const window = await commands({
      Filters: [
        { key: 'InvokedAfter', value: '2024-06-01T00:01:00Z' },
        { key: 'InvokedBefore', value: '2024-06-01T00:02:00Z' },
      ],
    });
    expect(window.map((c) => c.Parameters?.commands?.[0])).toEqual(['echo 2', 'echo 1']);
    const failed = await commands({ Filters: [{ key: 'Status', value: 'Failed' }] });
    expect(failed.map((c) => c.CommandId)).toEqual([deployId]);
    const agent = await commands({ Filters: [{ key: 'DocumentName', value: 'AWS-UpdateSSMAgent' }] });
    expect(agent).toHaveLength(1);
    const bad = await rejection(ssm.send(new ListCommandsCommand({ Filters: [{ key: 'Nope' as 'Status', value: 'x' }] })));
    expect(bad.name).toBe('InvalidFilterKey');
  });

  it('validates MaxResults and unknown command ids', async () => {
    const err = await rejection(ssm.send(new ListCommandsCommand({ MaxResults: 51 })));
    expect(err.name).toBe('ValidationException');
    const unknown = await rejection(
      ssm.send(new ListCommandsCommand({ CommandId: '00000000-0000-0000-0000-000000000000' })),
    );
    expect(unknown.name).toBe('InvalidCommandId');
  });

  it('lists invocations with plugin output when Details is true', async () => {
    const items: CommandInvocation[] = [];
    for await (const page of paginateListCommandInvocations(
      { client: ssm },
      { CommandId: deployId, Details: true, MaxResults: 1 },
    )) {
      items.push(...(page.CommandInvocations ?? []));
    }
    expect(items.map((i) => [i.InstanceId, i.Status])).toEqual([
      [INSTANCE, 'Success'],
      [OTHER, 'Failed'],
    ]);
    const plugin = items[0]?.CommandPlugins?.[0];
    expect(plugin?.Name).toBe('aws:runShellScript');
    expect(plugin?.Output).toHaveLength(2500);
    expect(plugin?.ResponseStartDateTime).toBeInstanceOf(Date);
    expect(items[1]?.CommandPlugins?.[0]?.Output).toBe('boom');
    const brief: CommandInvocation[] = [];
    for await (const page of paginateListCommandInvocations({ client: ssm }, { InstanceId: OTHER })) {
      brief.push(...(page.CommandInvocations ?? []));
    }
    expect(brief.map((i) => i.CommandPlugins)).toEqual([[]]);
  });

  it('returns GetCommandInvocation times as ISO strings and caps stdout at 24000 characters', async () => {
    const out = await ssm.send(
      new GetCommandInvocationCommand({ CommandId: deployId, InstanceId: INSTANCE, PluginName: 'aws:runShellScript' }),
    );
    expect(out.Status).toBe('Success');
    expect(out.ResponseCode).toBe(0);
    expect(typeof out.ExecutionStartDateTime).toBe('string');
    expect(out.ExecutionStartDateTime).toBe('2024-07-07T10:00:01.000Z');
    expect(out.ExecutionEndDateTime).toBe('2024-07-07T10:00:02.500Z');
    expect(out.ExecutionElapsedTime).toBe('PT1.5S');
    expect(out.StandardOutputContent).toHaveLength(24000);
    const missing = await rejection(
      ssm.send(new GetCommandInvocationCommand({ CommandId: deployId, InstanceId: 'i-0aaaaaaaaaaaaaaaa' })),
    );
    expect(missing.name).toBe('InvocationDoesNotExist');
    expect(missing.$fault).toBe('client');
    const plugin = await rejection(
      ssm.send(new GetCommandInvocationCommand({ CommandId: deployId, InstanceId: INSTANCE, PluginName: 'aws:nope' })),
    );
    expect(plugin.name).toBe('InvalidPluginName');
  });
});

describe('AWS JSON 1.1 wire', () => {
  it('answers errors with __type, a message, X-Amzn-ErrorType and a request id, and no code field', async () => {
    const res = await awsPost(running.url, 'AmazonSSM.GetParameter', { Name: '/nope' });
    expect(res.status).toBe(400);
    expect(res.headers.get('x-amzn-errortype')).toBe('ParameterNotFound');
    expect(res.headers.get('x-amzn-requestid')).toMatch(/^[0-9a-f-]{36}$/);
    const body = JSON.parse(res.text) as Record<string, unknown>;
    expect(body).toEqual({ __type: 'ParameterNotFound', message: 'Parameter /nope not found.' });
  });

  it('passes the request id to $metadata', async () => {
    const out = await ssm.send(new GetParametersByPathCommand({ Path: '/aegis' }));
    expect(out.$metadata.requestId).toMatch(/^[0-9a-f-]{36}$/);
    expect(out.$metadata.httpStatusCode).toBe(200);
  });

  it('accepts any path ending in / and rejects a wrong content type or target', async () => {
    const based = await fetch(`${running.url}/base/path/`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': 'AmazonSSM.GetParametersByPath' },
      body: JSON.stringify({ Path: '/aegis/prod/db' }),
    });
    expect(based.status).toBe(200);
    expect(((await based.json()) as { Parameters: unknown[] }).Parameters).toHaveLength(2);
    const wrongType = await awsPost(running.url, 'AmazonSSM.GetParameter', {}, { 'content-type': 'application/json' });
    expect(wrongType.status).toBe(400);
    expect(wrongType.headers.get('x-amzn-errortype')).toBe('SerializationException');
    const unknown = await awsPost(running.url, 'AmazonSSM.DeleteEverything', {});
    expect(unknown.headers.get('x-amzn-errortype')).toBe('UnknownOperationException');
    const otherService = await awsPost(running.url, 'Logs_20140328.FilterLogEvents', {});
    expect(otherService.status).toBe(400);
  });
});
