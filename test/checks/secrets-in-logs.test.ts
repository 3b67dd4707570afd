import { createHash } from 'node:crypto';
import check from '../../checks/secrets-in-logs';
import { CheckTester, expectNoSecrets, runCase } from '../helpers/check-tester';
import { FakeLogSource, FakeSecretStore, MemoryRawStream, MemoryStateStore, type FakeHolder } from '../fakes';
import { fakePrivatePem } from '../helpers/pem';
import type { RawLogChunk, RawLogPosition, RawLogStream } from '../../src/core/sources';
import type { CheckResult } from '../../src/core/types';
import { untrusted } from '../../src/core/untrusted';

const untrustedId = (s: string) => JSON.stringify(untrusted.id(s));

/** Deterministic token material, built at run time so the repository holds no secret-shaped text. */
function material(label: string, n: number, alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789'): string {
  let out = '';
  for (let round = 0; out.length < n; round++) {
    for (const b of createHash('sha512').update(`${label}:${round}`).digest()) out += alphabet[b % alphabet.length];
  }
  return out.slice(0, n);
}
const HEX = '0123456789abcdef';
const UPPER = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
const b64url = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');

const JWT_SECRET = 'Zt8rV2q0mXk5bP9wE1yH4sN7cL3fJ6aD';
const INTERNAL = 'in7ErnAl-s3cr3t+value/with==';
const QUOTED = 'pa"ss\\word-99x';
const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const PEM = fakePrivatePem(material('pem-body', 64, B64));
/** A key nobody configured: found by its shape alone. */
const UNKNOWN_PEM = fakePrivatePem([material('unknown-1', 64, B64), material('unknown-2', 64, B64), material('unknown-3', 24, B64) + '=='].join('\n'));

const holders: FakeHolder[] = [
  { service: 'gateway', name: 'JWT_SECRET_KEY', value: JWT_SECRET },
  { service: 'identity', name: 'JWT_SECRET_KEY', value: JWT_SECRET },
  { service: 'api', name: 'INTERNAL_SECRET', value: INTERNAL, provider: 'ssm' },
  { service: 'api', name: 'DB_PASSWORD', value: QUOTED },
  { service: 'audit', name: 'RECEIPT_SIGNING_PRIVATE_KEY', value: PEM },
  { service: 'api', name: 'ADMIN_PASSWORD', value: 'password' }, // a plain word: not looked for
];

const SHAPES = {
  jwt: `${b64url({ alg: 'HS256', typ: 'JWT' })}.${b64url({ sub: 'u-1', exp: 1 })}.${material('sig', 43)}`,
  acp: `acp_${material('acp', 32)}`,
  awsId: `AKIA${material('aws', 16, UPPER)}`,
  awsSecret: material('aws-secret', 40),
  slackToken: `xoxb-${material('slack1', 11, '0123456789')}-${material('slack2', 24, HEX)}`,
  slackHook: `https://hooks.slack.com/services/T${material('t', 8, UPPER)}/B${material('b', 8, UPPER)}/${material('h', 24)}`,
  bearer: material('bearer', 40),
  splunk: [8, 4, 4, 4, 12].map((n, i) => material(`splunk${i}`, n, HEX)).join('-'),
  datadog: material('dd', 32, HEX),
  pagerduty: material('pd', 32),
};
const PLANTED = Object.values(SHAPES);

const STREAM = '/var/log/aegis/api/api-1.jsonl';
const COLLECTED = '/var/lib/docker/containers/gw/gw-json.log';
const line = (o: Record<string, unknown>) => JSON.stringify({ ts: '2026-11-22T11:00:00.000Z', service: 'api', ...o });
const noise = [
  line({ event: 'http_request', route: '/v1/receipts', status: 200, request_id: 'ab12cd34ef56ab78' }),
  'Error: connect ECONNREFUSED 10.0.3.7:6379',
  '    at TCPConnectWrap.afterConnect [as oncomplete] (node:net:1555:16)',
  line({ event: 'api_key_used', key_prefix: 'acp_1a2b3c', client: '203.0.113.7' }),
];

/** The api service logs `lines` (after some noise) in one file; small chunks exercise chunk edges. */
function logs(lines: string[], extra: Record<string, RawLogStream[]> = {}) {
  return () => ({
    logs: new FakeLogSource({}, { raw: { api: [new MemoryRawStream(STREAM, 'file:64769:1201', [...noise, ...lines].join('\n') + '\n', 96)], ...extra } }),
    secrets: new FakeSecretStore({ holders }),
  });
}

const at = (detector: string) => `stream=${STREAM},detector=${detector}`;
const known = (secret: string) => `stream=${STREAM},detector=known-secret,secret=${secret}`;

CheckTester.run(check, {
  pass: [
    { name: 'no secret value and no secret shape in the logs', sources: logs([line({ event: 'http_request', route: '/healthz', status: 200 })]) },
    {
      name: 'look-alikes are not secrets: quoted armor, placeholders, key prefixes, plain words, non-JSON eyJ',
      sources: logs([
        line({ msg: `expected ${'-----BEGIN'} PRIVATE KEY----- header` }),
        'Authorization: Bearer YOUR_ACCESS_TOKEN_HERE',
        'login failed: wrong password for admin',
        `token eyJ${material('x', 10)}.${material('y', 10)}.zz is not a JWT`,
        line({ event: 'api_key_created', prefix: 'acp_9f8e7d', table: 'acp_api.api_keys' }),
        'AKIAEXAMPLE short id, and ' + `xAKIA${material('a', 16, UPPER)}x embedded`,
        `config check: ${'-----BEGIN'} PRIVATE KEY----- is not where a key file starts`,
        `digest ${material('digest', 64, HEX)}`,
      ]),
    },
    {
      name: 'a detector left out of the options is not run',
      options: { detectors: ['private-key'] },
      sources: logs([`Bearer ${SHAPES.bearer}`]),
      secrets: PLANTED,
    },
    {
      name: 'an unreadable checkpoint is noted and the stream searched from its start again',
      state: (() => {
        const st = new MemoryStateStore();
        st.setRaw('secrets-in-logs:file:64769:1201', '{"v":1,"stream":"/var/log/aegis/api/api-1.js');
        return st;
      })(),
      sources: logs([line({ event: 'http_request', route: '/healthz', status: 200 })]),
      notes: [{ messageId: 'checkpointReset', resource: `stream=${STREAM},checkpoint=reset`, message: /could not be used \(.*not valid JSON\), so the stream was searched from its start again/ }],
      verify: (r) => expect(r.measurements?.find((m) => m.name === 'log_bytes_scanned')?.value).toBeGreaterThan(0),
    },
    {
      name: 'without a secrets source the lines are still searched for shapes, with a note',
      sources: () => ({ logs: new FakeLogSource({}, { raw: { api: [new MemoryRawStream(STREAM, 'file:1:2', noise.join('\n') + '\n')] } }) }),
      notes: [{ messageId: 'noKnownValues', resource: 'source=secrets' }],
    },
  ],
  fail: [
    {
      name: 'a known secret value in a JSON line names the stream, line, byte and the secret, never the value',
      sources: logs([line({ event: 'config_dump', env: { JWT_SECRET_KEY: JWT_SECRET } })]),
      findings: [
        {
          messageId: 'knownValue',
          resource: known('JWT_SECRET_KEY'),
          message: new RegExp(`^Log stream ${STREAM} holds the value of JWT_SECRET_KEY at line 5 \\(byte \\d+\\) \\(1 occurrence`),
          evidence: { detector: 'known-secret', secret: 'JWT_SECRET_KEY', first: { line: 5 }, occurrences: 1, kind: 'file' },
        },
      ],
    },
    {
      name: 'known values in plain text, JSON-escaped, repeated, and a PEM body line',
      sources: logs([
        `panic: dial ${INTERNAL} refused`,
        line({ password: QUOTED }),
        line({ detail: PEM }),
        `again ${INTERNAL} and ${INTERNAL}`,
      ]),
      findings: [
        { messageId: 'knownValue', resource: known('INTERNAL_SECRET'), evidence: { occurrences: 3, first: { line: 5 }, last: { line: 8 } } },
        { messageId: 'knownValue', resource: known('DB_PASSWORD') },
        { messageId: 'knownValue', resource: known('RECEIPT_SIGNING_PRIVATE_KEY') },
        { messageId: 'shape', resource: at('private-key'), message: /holds a private-key PEM block at line 7/ },
      ],
    },
    {
      name: 'a private key printed raw over several lines, and line by line through a JSON collector',
      sources: () => ({
        logs: new FakeLogSource(
          {},
          {
            raw: {
              api: [new MemoryRawStream(STREAM, 'file:64769:1201', [...noise, 'loaded key:', ...UNKNOWN_PEM.trimEnd().split('\n')].join('\n') + '\n', 96)],
              gateway: [new MemoryRawStream(COLLECTED, 'file:64769:1300', UNKNOWN_PEM.trimEnd().split('\n').map((l) => JSON.stringify({ log: `${l}\n`, stream: 'stderr' })).join('\n') + '\n', 96)],
            },
          },
        ),
        secrets: new FakeSecretStore({ holders }),
      }),
      secrets: [UNKNOWN_PEM],
      findings: [
        { messageId: 'shape', resource: at('private-key'), message: /holds a private-key PEM block at line 6 / },
        { messageId: 'shape', resource: `stream=${COLLECTED},detector=private-key`, message: /at line 1 / },
      ],
    },
    {
      name: 'every secret shape',
      sources: logs([
        line({ headers: { authorization: `Bearer ${SHAPES.jwt}` } }),
        `sdk call with key ${SHAPES.acp} failed`,
        line({ aws_access_key_id: SHAPES.awsId, aws_secret_access_key: SHAPES.awsSecret }),
        `slack ${SHAPES.slackToken} posting to ${SHAPES.slackHook}`,
        `Authorization: Bearer ${SHAPES.bearer}`,
        `HEC header Authorization: Splunk ${SHAPES.splunk}`,
        line({ dd_api_key: SHAPES.datadog }),
        line({ routing_key: SHAPES.pagerduty }),
      ]),
      secrets: PLANTED,
      findings: ['jwt', 'acp-api-key', 'aws-access-key-id', 'aws-secret-access-key', 'slack-token', 'slack-webhook', 'bearer-token', 'splunk-hec-token', 'datadog-api-key', 'pagerduty-key'].map((d) => ({
        messageId: 'shape',
        resource: at(d),
      })),
      verify: (r) => {
        expect(r.findings.find((f) => f.resource === at('jwt'))?.message).toMatch(/holds a JSON Web Token at line 5 \(byte \d+\)/);
        expect(r.measurements?.find((m) => m.name === 'log_streams_scanned')?.value).toBe(1);
      },
    },
    {
      name: 'a hostile stream name is bounded in the message and whole in the resource',
      sources: () => ({
        logs: new FakeLogSource({}, { raw: { api: [new MemoryRawStream(`/logs/<script>x</script>\n${'y'.repeat(400)}.log`, 'file:9:9', `${SHAPES.awsId}\n`)] } }),
        secrets: new FakeSecretStore({ holders }),
      }),
      secrets: PLANTED,
      findings: [{ messageId: 'shape', resource: `stream=${untrustedId(`/logs/<script>x</script>\n${'y'.repeat(400)}.log`)},detector=aws-access-key-id` }],
      verify: (r) => expect(r.findings[0].message).not.toMatch(/\n/),
    },
  ],
  error: [
    {
      name: 'the log source is down',
      sources: () => ({ logs: new FakeLogSource({ api: [] }).fail(), secrets: new FakeSecretStore({ holders }) }),
      error: /logs: events: connection refused/,
      code: 'AUDIT_ERR_SOURCE_UNAVAILABLE',
    },
    {
      name: 'the secret store is down: values cannot be matched, so no pass',
      sources: () => ({ logs: new FakeLogSource({ api: [] }), secrets: new FakeSecretStore({ holders }).fail('holders') }),
      error: /secrets: holders: connection refused/,
      code: 'AUDIT_ERR_SOURCE_UNAVAILABLE',
    },
  ],
}, { coveredElsewhere: ['incomplete'] });

describe('incremental reading', () => {
  function setup(text: string) {
    const stream = new MemoryRawStream(STREAM, 'file:64769:77', text, 128);
    const state = new MemoryStateStore();
    const sources = { logs: new FakeLogSource({}, { raw: { api: [stream] } }), secrets: new FakeSecretStore({ holders }) };
    const run = () => runCase(check, { name: 'run', sources }, { sources, state });
    const scanned = async () => {
      const o = await run();
      expectNoSecrets(o, PLANTED);
      return { result: o.result, bytes: o.result.measurements?.find((m) => m.name === 'log_bytes_scanned')?.value };
    };
    return { stream, state, scanned };
  }

  test('a second run reads only new lines and keeps reporting what the stream holds', async () => {
    const first = noise.join('\n') + '\n' + line({ token: JWT_SECRET }) + '\n';
    const { stream, state, scanned } = setup(first);
    const a = await scanned();
    expect(a.bytes).toBe(Buffer.byteLength(first));
    expect(a.result.findings.map((f) => f.resource)).toEqual([known('JWT_SECRET_KEY')]);

    const b = await scanned();
    expect(b.bytes).toBe(0);
    expect(b.result.status).toBe('fail');
    expect(b.result.findings[0].id).toBe(a.result.findings[0].id);

    const added = `again ${JWT_SECRET}\nAuthorization: Bearer ${SHAPES.bearer}\n`;
    stream.text += added;
    const c = await scanned();
    expect(c.bytes).toBe(Buffer.byteLength(added));
    const jwt = c.result.findings.find((f) => f.resource === known('JWT_SECRET_KEY'));
    expect(jwt?.evidence).toMatchObject({ occurrences: 2, first: { line: 5 }, last: { line: 6 } });
    expect(c.result.findings.map((f) => f.resource).sort()).toEqual([at('bearer-token'), known('JWT_SECRET_KEY')].sort());
    // The checkpoint is keyed by what the stream is, not by a deployment name, and holds no value.
    expect(state.keys()).toEqual(['secrets-in-logs:file:64769:77']);
  });

  test('a partial last line is read again once complete, and not counted twice', async () => {
    const { stream, scanned } = setup(`${noise[0]}\nhalf a line with ${INTERNAL}`);
    const a = await scanned();
    expect(a.result.findings[0].evidence).toMatchObject({ occurrences: 1 });
    stream.text += ' and the rest\n';
    const b = await scanned();
    expect(b.result.findings[0].evidence).toMatchObject({ occurrences: 1, first: { line: 2 } });
  });

  test('a file truncated and written again past its checkpoint is read from its start, its old leaks forgotten', async () => {
    const { stream, scanned } = setup(noise.join('\n') + '\n' + `leak ${INTERNAL}\n`);
    expect((await scanned()).result.status).toBe('fail');
    const rewritten = [line({ event: 'rotated' }), ...noise, ...noise, ...noise].join('\n') + '\n';
    stream.text = rewritten;
    const b = await scanned();
    expect({ status: b.result.status, bytes: b.bytes }).toEqual({ status: 'pass', bytes: Buffer.byteLength(rewritten) });
  });

  test('a file truncated to nothing no longer reports what it held', async () => {
    const { stream, scanned } = setup(`leak ${INTERNAL}\n`);
    expect((await scanned()).result.status).toBe('fail');
    stream.text = '';
    expect((await scanned()).result.status).toBe('pass');
  });

  test('`run --full` searches every stream from its start again, counting each occurrence once', async () => {
    const text = noise.join('\n') + '\n' + `leak ${INTERNAL}\n`;
    const { state, scanned } = setup(text);
    await scanned();
    const sources = { logs: new FakeLogSource({}, { raw: { api: [new MemoryRawStream(STREAM, 'file:64769:77', text, 128)] } }), secrets: new FakeSecretStore({ holders }) };
    const o = await runCase(check, { name: 'full', sources, full: true }, { sources, state });
    expect(o.result.measurements?.find((m) => m.name === 'log_bytes_scanned')?.value).toBe(Buffer.byteLength(text));
    expect(o.result.findings.map((f) => [f.resource, f.evidence?.occurrences])).toEqual([[known('INTERNAL_SECRET'), 1]]);
  });

  test('a truncated file is read from its start again and its old leaks are forgotten', async () => {
    const { stream, scanned } = setup(noise.join('\n') + '\n' + `leak ${INTERNAL}\n` + noise.join('\n') + '\n');
    expect((await scanned()).result.status).toBe('fail');
    stream.text = 'fresh\n';
    const b = await scanned();
    expect(b.result.status).toBe('pass');
    expect(b.bytes).toBe(6);
  });
});

describe('a read longer than the check may take', () => {
  /** A stream that takes 100 ms per chunk of about 96 bytes. */
  class SlowStream extends MemoryRawStream {
    override async *read(from?: RawLogPosition): AsyncIterable<RawLogChunk> {
      for await (const c of super.read(from)) {
        await new Promise((r) => setTimeout(r, 100));
        yield c;
      }
    }
  }
  const text = (first: string) => [first, ...Array.from({ length: 80 }, (_, i) => line({ event: 'http_request', n: i }))].join('\n') + '\n';
  const bytesOf = (r: CheckResult) => r.measurements?.find((m) => m.name === 'log_bytes_scanned')?.value ?? -1;

  test('stops before its deadline with its progress saved: nothing found yet is an error, never a pass, and the next run continues', async () => {
    const all = text(line({ event: 'start' }));
    const state = new MemoryStateStore();
    const sources = { logs: new FakeLogSource({}, { raw: { api: [new SlowStream(STREAM, 'file:1:5', all, 96)] } }), secrets: new FakeSecretStore({ holders }) };
    const first = await runCase(check, { name: 'short', sources, timeoutMs: 3_000 }, { sources, state });
    expect({ status: first.result.status, code: first.result.errorCode }).toEqual({ status: 'error', code: 'AUDIT_ERR_TIMEOUT' });
    expect(first.result.error).toMatch(/^secrets-in-logs: the search is incomplete: .* MB searched in .*1 stream\(s\) not yet read to their end \(the first: \/var\/log\/aegis\/api\/api-1\.jsonl\).*The rest is searched next run\.$/);
    const second = await runCase(check, { name: 'long', sources, timeoutMs: 60_000 }, { sources, state });
    expect(second.result.status).toBe('pass');
    expect(bytesOf(first.result)).toBeGreaterThan(0);
    expect(bytesOf(first.result) + bytesOf(second.result)).toBe(Buffer.byteLength(all));
  }, 30_000);

  test('what it found before the deadline is reported, with a note that the search goes on', async () => {
    const state = new MemoryStateStore();
    const sources = { logs: new FakeLogSource({}, { raw: { api: [new SlowStream(STREAM, 'file:1:6', text(`leak ${INTERNAL}`), 96)] } }), secrets: new FakeSecretStore({ holders }) };
    const o = await runCase(check, { name: 'short', sources, timeoutMs: 3_000 }, { sources, state });
    expect(o.result.status).toBe('fail');
    expect(o.result.findings.map((f) => `${f.messageId} ${f.resource} ${f.severity}`).sort()).toEqual([`incomplete search=incomplete info`, `knownValue ${known('INTERNAL_SECRET')} critical`]);
    expectNoSecrets(o);
  }, 30_000);
});

test('the known values never reach findings, evidence, measurements or the checkpoint', async () => {
  const state = new MemoryStateStore();
  const o = await runCase(check, { name: 'canary', sources: logs([line({ a: JWT_SECRET, b: INTERNAL, c: PEM, d: QUOTED }), ...PLANTED.map((p) => `x ${p} y`), ...UNKNOWN_PEM.split('\n')]) }, { state });
  expect(o.result.status).toBe('fail');
  expect(o.result.findings.length).toBeGreaterThanOrEqual(10); // 4 known values, the PEM and 5 bare shapes
  const text = JSON.stringify(o.result) + state.dump();
  // A plain substring search for each value (each line of a PEM body) and every 8-character piece of it.
  const leaks: string[] = [];
  for (const v of [JWT_SECRET, INTERNAL, QUOTED, ...PLANTED, PEM, UNKNOWN_PEM]) {
    for (const l of v.split('\n').filter((x) => x !== '' && !x.startsWith('-----'))) {
      if (text.includes(l)) leaks.push(l);
      for (let i = 0; i + 8 <= l.length; i++) if (text.includes(l.slice(i, i + 8))) leaks.push(l.slice(i, i + 8));
    }
  }
  expect(leaks).toEqual([]);
});

test('without a logs source the check is skipped, never passed', async () => {
  const { result } = await runCase(check, { name: 'none', sources: { secrets: new FakeSecretStore({ holders }) } });
  expect(result.status).toBe('skipped');
});
