import { FilterLogEventsCommand, type CloudWatchLogsClient } from '@aws-sdk/client-cloudwatch-logs';
import { DescribeParametersCommand, GetParametersByPathCommand, type SSMClient } from '@aws-sdk/client-ssm';
import { LogsEmulator, SsmEmulator, VaultEmulator, type RunningEmulator } from '../../src/sandbox/emulators';
import { httpStatus, logsClient, rejection, ssmClient, vaultClient } from './clients';

/** The Node error code behind an axios network error. */
function codeOf(err: Record<string, unknown>): unknown {
  return err.code ?? (err.cause as Record<string, unknown> | undefined)?.code;
}

/**
 * Under jest, Node's own socket errors come from another realm, fail the SDK's
 * `instanceof Error` and get wrapped ("AWS SDK error wrapper for Error: connect ECONNREFUSED"),
 * losing `code`; the text keeps it.
 */
function networkText(err: Error): string {
  return `${String((err as Error & { code?: unknown }).code ?? '')} ${err.message}`;
}

describe('AWS faults', () => {
  let ssmEmu: SsmEmulator;
  let running: RunningEmulator;
  const clients: SSMClient[] = [];

  function client(opts: Parameters<typeof ssmClient>[1] = {}): SSMClient {
    const c = ssmClient(running.url, opts);
    clients.push(c);
    return c;
  }

  const byPath = () => new GetParametersByPathCommand({ Path: '/aegis' });

  beforeEach(async () => {
    ssmEmu = new SsmEmulator();
    ssmEmu.putParameter({ name: '/aegis/x', type: 'String', value: '1' });
    running = await ssmEmu.start();
  });

  afterEach(async () => {
    for (const c of clients.splice(0)) c.destroy();
    await running.close();
  });

  it('throttles with 400 ThrottlingException "Rate exceeded", retried up to maxAttempts (standard strategy)', async () => {
    await ssmEmu.faults.inject('throttle');
    const err = await rejection(client({ maxAttempts: 3 }).send(byPath()));
    expect(err.name).toBe('ThrottlingException');
    expect(err.message).toBe('Rate exceeded');
    expect(err.$fault).toBe('client');
    expect(httpStatus(err)).toBe(400);
    expect(ssmEmu.faults.requestCount('GetParametersByPath')).toBe(3);
  });

  it('lets a limited fault run out, so a retried call succeeds', async () => {
    await ssmEmu.faults.inject('throttle', { times: 2 });
    const out = await client({ maxAttempts: 3, noBackoff: true }).send(byPath());
    expect(out.Parameters).toHaveLength(1);
    expect(ssmEmu.faults.requestCount('GetParametersByPath')).toBe(3);
    expect(ssmEmu.faults.active()).toEqual([]);
  });

  it('denies with AccessDeniedException, which is not retried', async () => {
    await ssmEmu.faults.inject('forbidden');
    const err = await rejection(client({ maxAttempts: 3, noBackoff: true }).send(byPath()));
    expect(err.name).toBe('AccessDeniedException');
    expect(err.message).toContain('is not authorized to perform: ssm:GetParametersByPath on resource: arn:aws:ssm:');
    expect(httpStatus(err)).toBe(400);
    expect(ssmEmu.faults.requestCount()).toBe(1);
  });

  it('answers server-error with 500 InternalServerError, a server fault that is retried', async () => {
    await ssmEmu.faults.inject('server-error');
    const err = await rejection(client({ maxAttempts: 2, noBackoff: true }).send(byPath()));
    expect(err.name).toBe('InternalServerError');
    expect(err.$fault).toBe('server');
    expect(httpStatus(err)).toBe(500);
    expect(ssmEmu.faults.requestCount('GetParametersByPath')).toBe(2);
  });

  it('sends a truncated body for malformed, which the SDK cannot parse', async () => {
    await ssmEmu.faults.inject('malformed');
    const err = await rejection(client().send(byPath()));
    expect(err.name).toBe('SyntaxError');
  });

  it('hangs until the client times out', async () => {
    await ssmEmu.faults.inject('hang');
    const started = Date.now();
    const err = await rejection(client({ requestTimeout: 300 }).send(byPath()));
    expect(err.name).toBe('TimeoutError');
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
    expect(ssmEmu.faults.requestCount()).toBe(1);
  });

  it('refuses connections emulator-wide, and listens on the same port again when cleared', async () => {
    const c = client();
    await c.send(byPath());
    await ssmEmu.faults.inject('refuse');
    const err = await rejection(c.send(byPath()));
    expect(networkText(err)).toContain('ECONNREFUSED');
    expect(ssmEmu.faults.requestCount()).toBe(1);
    await ssmEmu.faults.clear();
    expect((await c.send(byPath())).Parameters).toHaveLength(1);
    expect((await client().send(byPath())).Parameters).toHaveLength(1);
  });

  it('applies a fault to one operation only, and resets the connection for a per-operation refuse', async () => {
    await ssmEmu.faults.inject('refuse', { operation: 'DescribeParameters' });
    const c = client();
    const err = await rejection(c.send(new DescribeParametersCommand({})));
    expect(networkText(err)).toMatch(/ECONNRESET|socket hang up/);
    expect((await c.send(byPath())).Parameters).toHaveLength(1);
    expect(ssmEmu.faults.requestCounts()).toEqual({ DescribeParameters: 1, GetParametersByPath: 1 });
  });

  it('throttles CloudWatch Logs with its modeled ThrottlingException', async () => {
    const logsEmu = new LogsEmulator();
    logsEmu.createLogGroup('/g');
    const logsRunning = await logsEmu.start();
    const logs: CloudWatchLogsClient = logsClient(logsRunning.url, { maxAttempts: 2, noBackoff: true });
    try {
      await logsEmu.faults.inject('throttle', { operation: 'FilterLogEvents' });
      const err = await rejection(logs.send(new FilterLogEventsCommand({ logGroupName: '/g' })));
      expect(err.name).toBe('ThrottlingException');
      expect(logsEmu.faults.requestCount('FilterLogEvents')).toBe(2);
      await logsEmu.faults.clear('FilterLogEvents');
      expect((await logs.send(new FilterLogEventsCommand({ logGroupName: '/g' }))).events).toEqual([]);
    } finally {
      logs.destroy();
      await logsRunning.close();
    }
  });
});

describe('Vault faults', () => {
  let emu: VaultEmulator;
  let running: RunningEmulator;

  beforeEach(async () => {
    emu = new VaultEmulator();
    emu.putKv('secret', 'a', { v: 1 });
    running = await emu.start();
  });

  afterEach(async () => {
    await running.close();
  });

  it('maps throttle, forbidden and server-error to 429, 403 and 500, and counts requests per route', async () => {
    const vault = vaultClient(running.url, emu.rootToken);
    const cases: Array<['throttle' | 'forbidden' | 'server-error', number, string]> = [
      ['throttle', 429, 'rate limit quota exceeded'],
      ['forbidden', 403, 'permission denied'],
      ['server-error', 500, 'internal error'],
    ];
    for (const [kind, status, text] of cases) {
      await emu.faults.inject(kind, { operation: 'kv-read' });
      const err = await rejection(vault.read('secret/data/a'));
      expect((err.response as { statusCode: number }).statusCode).toBe(status);
      expect(err.message).toContain(text);
    }
    await emu.faults.clear();
    expect((await vault.read('secret/data/a')).data.data).toEqual({ v: 1 });
    expect(emu.faults.requestCount('kv-read')).toBe(4);
  });

  it('still resolves sys/health under a throttle fault (node-vault never rejects health)', async () => {
    await emu.faults.inject('throttle', { operation: 'sys/health' });
    const body = await vaultClient(running.url, undefined).health();
    expect(body.errors?.[0]).toContain('rate limit quota exceeded');
  });

  it('returns a truncated body for malformed, which reaches node-vault as an unparsed string', async () => {
    await emu.faults.inject('malformed');
    const res: unknown = await vaultClient(running.url, emu.rootToken).read('secret/data/a');
    expect(typeof res).toBe('string');
    expect(() => JSON.parse(String(res))).toThrow();
  });

  it('hangs until the axios timeout, and refuses connections when asked', async () => {
    await emu.faults.inject('hang');
    const hung = await rejection(vaultClient(running.url, emu.rootToken, 300).read('secret/data/a'));
    expect(codeOf(hung)).toBe('ECONNABORTED');
    await emu.faults.inject('refuse');
    const refused = await rejection(vaultClient(running.url, emu.rootToken).read('secret/data/a'));
    expect(codeOf(refused)).toBe('ECONNREFUSED');
    await emu.faults.clear();
    expect((await vaultClient(running.url, emu.rootToken).read('secret/data/a')).data.data).toEqual({ v: 1 });
  });
});
