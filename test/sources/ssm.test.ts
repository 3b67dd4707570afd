/**
 * The SSM source and the Parameter Store secret backend against the loopback SSM emulator,
 * through the real @aws-sdk/client-ssm: pagination over small and empty pages, decryption,
 * epoch-second timestamps, filters, and errors that name the fault without leaking.
 */
import { generateKeyPairSync } from 'node:crypto';
import { SsmEmulator } from '../../src/sandbox/emulators';
import type { RunningEmulator } from '../../src/sandbox/emulators';
import { ssmSchema } from '../../src/config/schema';
import { AwsSsmSource, SsmClientHandle, SsmSecretBackend } from '../../src/sources/ssm';
import { KnownSecrets } from '../../src/core/secret';
import { AuditError } from '../../src/core/errors';
import { publicKeyOfPrivatePem } from '../../src/sources/pem';

process.env.AEGIS_TEST_AWS_KEY_ID = 'AKIDSSMTEST';
process.env.AEGIS_TEST_AWS_SECRET = 'ssm-test-secret-access-key';

const SMALL_PAGES = { maxPageSize: 3, emptyPageEvery: 2, trailingEmptyPage: true };
const emu = new SsmEmulator({
  paging: { GetParametersByPath: SMALL_PAGES, DescribeParameters: SMALL_PAGES, ListCommands: SMALL_PAGES, ListCommandInvocations: SMALL_PAGES },
});
let running: RunningEmulator;
const handles: SsmClientHandle[] = [];

const NOW = Date.now();
const SERVICES = ['identity', 'gateway', 'api', 'audit', 'insight', 'extra1', 'extra2', 'extra3'];
const secretOf = (s: string) => `internal-${s}-0123456789abcdef`;
const receipt = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();

function handle(over: Record<string, unknown> = {}): SsmClientHandle {
  const h = new SsmClientHandle(
    ssmSchema.parse({
      region: 'us-east-1',
      endpoint: running.url,
      credentials_env: { access_key_id: 'AEGIS_TEST_AWS_KEY_ID', secret_access_key: 'AEGIS_TEST_AWS_SECRET' },
      path: '/aegis/test',
      max_attempts: 1,
      timeout: 10_000,
      ...over,
    }),
  );
  handles.push(h);
  return h;
}

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

beforeAll(async () => {
  running = await emu.start();
  for (const s of SERVICES) {
    emu.putParameter({ name: `/aegis/test/${s}/INTERNAL_SECRET`, type: 'SecureString', value: secretOf(s), lastModified: new Date(NOW - 3_600_000) });
    emu.putParameter({ name: `/aegis/test/${s}/LOG_LEVEL`, type: 'String', value: 'info' });
  }
  emu.putParameter({ name: '/aegis/test/audit/RECEIPT_SIGNING_PRIVATE_KEY', type: 'SecureString', value: receipt });
  emu.putParameter({ name: '/aegis/other/gateway/INTERNAL_SECRET', type: 'SecureString', value: 'outside-the-path-value' });
  for (let i = 0; i < 7; i++) {
    emu.addCommand({
      commandId: `00000000-0000-0000-0000-00000000000${i}`,
      documentName: 'aegis-deploy',
      parameters: { commands: [`./deploy.sh ${i}`], INTERNAL_SECRET: ['{{ssm-secure:/aegis/test/gateway/INTERNAL_SECRET}}'] },
      requestedAt: new Date(NOW - (i + 1) * 86_400_000),
      instanceIds: ['i-0123456789abcdef0', 'i-0fedcba9876543210'],
      invocations: [
        { instanceId: 'i-0123456789abcdef0', pluginName: 'deploy', output: `deployed ${i}` },
        { instanceId: 'i-0fedcba9876543210', pluginName: 'deploy', output: `deployed ${i} too`, error: 'warning: slow disk' },
      ],
    });
  }
  emu.addCommand({ documentName: 'AWS-RunShellScript', parameters: { commands: ['uptime'] }, requestedAt: new Date(NOW - 3_600_000), instanceIds: ['i-0123456789abcdef0'] });
  emu.addCommand({ documentName: 'aegis-deploy', parameters: {}, requestedAt: new Date(NOW - 40 * 86_400_000), instanceIds: ['i-0123456789abcdef0'] });
});

afterAll(async () => {
  for (const h of handles) h.close();
  await emu.close();
});

beforeEach(async () => {
  await emu.faults.clear();
  emu.faults.resetCounts();
});

describe('SSM source against the emulator', () => {
  test('commands: the deploy document since a date, newest first, across small and empty pages', async () => {
    const src = new AwsSsmSource(handle());
    const cmds = await collect(src.commands({ documentName: 'aegis-deploy', since: new Date(NOW - 30 * 86_400_000) }));
    expect(cmds.map((c) => c.commandId)).toEqual([0, 1, 2, 3, 4, 5, 6].map((i) => `00000000-0000-0000-0000-00000000000${i}`));
    expect(cmds[0].requestedAt.getTime()).toBe(NOW - 86_400_000); // epoch seconds on the wire, a Date here
    expect(cmds[0].parameters).toEqual({ commands: ['./deploy.sh 0'], INTERNAL_SECRET: ['{{ssm-secure:/aegis/test/gateway/INTERNAL_SECRET}}'] });
    expect(cmds[0].instanceIds).toEqual(['i-0123456789abcdef0', 'i-0fedcba9876543210']);
    // 7 commands in pages of at most 3 with every second page empty: more than 3 requests.
    expect(emu.faults.requestCount('ListCommands')).toBeGreaterThan(3);
  });

  test('outputs: every plugin of every invocation, stdout and stderr', async () => {
    const src = new AwsSsmSource(handle());
    const outs = await collect(src.outputs('00000000-0000-0000-0000-000000000003'));
    expect(outs.map((o) => [o.instanceId, o.pluginName])).toEqual([
      ['i-0123456789abcdef0', 'deploy'],
      ['i-0fedcba9876543210', 'deploy'],
    ]);
    expect(outs[0].output).toContain('deployed 3');
    expect(outs[1].output).toContain('warning: slow disk');
    expect(emu.faults.requestCount('GetCommandInvocation')).toBe(2);
  });

  test('parameters: metadata under the path, recursively, with types and dates', async () => {
    const src = new AwsSsmSource(handle());
    const ps = await collect(src.parameters());
    expect(ps).toHaveLength(2 * SERVICES.length + 1);
    expect(ps.find((p) => p.name === '/aegis/other/gateway/INTERNAL_SECRET')).toBeUndefined();
    const gw = ps.find((p) => p.name === '/aegis/test/gateway/INTERNAL_SECRET');
    expect(gw).toMatchObject({ type: 'SecureString', keyId: 'alias/aws/ssm' });
    expect(Math.abs((gw?.lastModified?.getTime() ?? 0) - (NOW - 3_600_000))).toBeLessThan(1000);
    expect(ps.find((p) => p.name === '/aegis/test/api/LOG_LEVEL')?.type).toBe('String');
  });

  test('secret backend: decrypted values per service, registered with the scrubber', async () => {
    const known = new KnownSecrets();
    const backend = new SsmSecretBackend(handle(), 'audit', known);
    const holders = await backend.holders('INTERNAL_SECRET', SERVICES);
    expect(holders.map((h) => h.service)).toEqual(SERVICES);
    expect(holders[1]).toMatchObject({ service: 'gateway', provider: 'ssm', origin: 'ssm:/aegis/test/gateway/INTERNAL_SECRET' });
    expect(holders[1].value.reveal()).toBe(secretOf('gateway'));
    expect(holders[1].lastModified?.getTime()).toBeCloseTo(NOW - 3_600_000, -3);
    expect(known.scrub(`x ${secretOf('api')} y`)).toBe('x [redacted] y');
    // A String parameter that is not secret-named is not registered (it is not a secret).
    expect(known.scrub('level info here')).toBe('level info here');
    // Read once per run, with decryption, over several pages.
    const n = emu.faults.requestCount('GetParametersByPath');
    await backend.holders('LOG_LEVEL', SERVICES);
    expect(emu.faults.requestCount('GetParametersByPath')).toBe(n);
    expect(n).toBeGreaterThan(6);
  });

  test('secret backend: the signing key from Parameter Store, reduced to its fingerprint', async () => {
    const backend = new SsmSecretBackend(handle(), 'audit', new KnownSecrets());
    const [k] = await backend.signingKeys('receipt');
    expect(k).toMatchObject({ key: 'receipt', provider: 'ssm', origin: 'ssm:/aegis/test/audit/RECEIPT_SIGNING_PRIVATE_KEY' });
    expect(k.fingerprint).toBe(publicKeyOfPrivatePem(receipt, 'x', 'y').fingerprint);
    expect(await backend.signingKeys('root')).toEqual([]);
  });

  test('a listing cut short by the check timeout (aborted signal) is an error, not a short list', async () => {
    const src = new AwsSsmSource(handle());
    await expect(collect(src.commands({ documentName: 'aegis-deploy', since: new Date(0), signal: AbortSignal.abort() }))).rejects.toMatchObject({
      code: 'AUDIT_ERR_TIMEOUT',
      message: expect.stringMatching(/^ssm: listing commands of aegis-deploy: stopped/),
    });
    await expect(collect(src.parameters(AbortSignal.abort()))).rejects.toMatchObject({ code: 'AUDIT_ERR_TIMEOUT' });
  });

  test('a path with no parameters at all (a typo) is an error naming the path, not "no secrets"', async () => {
    const h = handle({ path: '/aegis/tset' });
    const expected = { code: 'AUDIT_ERR_SOURCE_UNAVAILABLE', reason: 'not_found', message: expect.stringMatching(/^ssm: .*under \/aegis\/tset: no parameter exists under this path \(sources\.secrets\.ssm\.path\)$/) };
    await expect(new SsmSecretBackend(h, 'audit', new KnownSecrets()).holders('INTERNAL_SECRET', ['gateway'])).rejects.toMatchObject(expected);
    await expect(collect(new AwsSsmSource(h).parameters())).rejects.toMatchObject(expected);
    // A path that holds parameters, just not this name, is an ordinary absence.
    expect(await new SsmSecretBackend(handle(), 'audit', new KnownSecrets()).holders('NO_SUCH_NAME', ['gateway'])).toEqual([]);
  });

  test('access denied is a coded error naming the source and the fault, without credentials', async () => {
    await emu.faults.inject('forbidden');
    const src = new AwsSsmSource(handle());
    const err = await collect(src.parameters()).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(AuditError);
    const e = err as AuditError;
    expect(e.code).toBe('AUDIT_ERR_SOURCE_UNAVAILABLE');
    expect(e.reason).toBe('forbidden');
    expect(e.message).toMatch(/^ssm: describing parameters under \/aegis\/test: access denied: /);
    expect(e.message).not.toMatch(/AKIDSSMTEST|ssm-test-secret-access-key/);
  });

  test('throttling is retried by the SDK up to max_attempts, then reported', async () => {
    await emu.faults.inject('throttle', { operation: 'ListCommands' });
    const src = new AwsSsmSource(handle({ max_attempts: 3 }));
    await expect(collect(src.commands({ documentName: 'aegis-deploy', since: new Date(0) }))).rejects.toThrow(
      /^ssm: listing commands of aegis-deploy: throttled \(gave up after retries\): Rate exceeded/,
    );
    expect(emu.faults.requestCount('ListCommands')).toBe(3);
  });

  test('a transient throttle is absorbed by the retry', async () => {
    await emu.faults.inject('throttle', { operation: 'DescribeParameters', times: 1 });
    const src = new AwsSsmSource(handle({ max_attempts: 2 }));
    expect(await collect(src.parameters())).toHaveLength(2 * SERVICES.length + 1);
  });
});
