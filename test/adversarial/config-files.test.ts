/**
 * Issue 9, cases 5, 6 and 7 (error texts): config files that are not small regular files,
 * YAML built to exhaust the parser, names that become paths, and `${VAR}` values in errors.
 * - `--config /dev/zero` grew to 4.3 GB and did not stop; a FIFO blocked forever; a 10 MB
 *   config took 10.6 s and 859 MB.
 * - A billion-laughs alias bomb and a self-referencing alias (stack overflow) exited 3
 *   "internal error"; a 10 MB `deployment` name passed validation and failed at the end on
 *   ENAMETOOLONG.
 * - A duration error echoed the interpolated `${VAR}` value in full.
 * Now each is exit 2 with one message naming the file (and the key, the limit, the
 * variable), no stack trace, promptly — at start, in `config validate`, and on a reload,
 * where the running daemon keeps serving.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../src/sandbox/embedded-postgres';
import { canaryToken, fetchText, findLeaks, fork, requireBuild, runCli, waitFor, type Forked } from './helpers';

let dir: string;
const running: Forked[] = [];

beforeAll(() => {
  requireBuild();
  dir = mkdtempSync(join(tmpdir(), 'adv-config-'));
  mkdirSync(join(dir, 'env'));
  writeFileSync(join(dir, 'env', 'gateway.env'), 'INTERNAL_SECRET=config_files_internal_value\n');
});
afterAll(() => {
  for (const f of running) if (f.child.exitCode === null && f.child.signalCode === null) f.child.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

const BASE = ['services: [gateway]', 'sources:', '  secrets: { env_files: { gateway: env/gateway.env } }', 'outputs: { dir: out }'];

function file(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

function fifo(name: string): string {
  const p = join(dir, name);
  execFileSync('mkfifo', [p]);
  return p;
}

/** Nine levels of nine aliases each: 9^9 (387 million) strings once expanded. */
function billionLaughs(): string {
  const lines = ['deployment: laughs', 'lol0: &lol0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]'];
  for (let i = 1; i < 10; i++) lines.push(`lol${i}: &lol${i} [${Array.from({ length: 9 }, () => `*lol${i - 1}`).join(', ')}]`);
  return lines.join('\n') + '\n';
}

/** Exit 2, one `aegis-audit:` message, no stack trace, no "internal error". */
async function expectConfigError(args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<string> {
  const started = Date.now();
  const r = await runCli(args, env, dir);
  expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 2, stderr: expect.stringMatching(/^aegis-audit: /) });
  expect(r.stderr).not.toMatch(/internal error|\n\s+at \S+ \(|RangeError|ReferenceError/);
  expect(r.stderr.length).toBeLessThan(4_000);
  // Generous: a forked CLI on a loaded machine; the bug was "forever".
  expect(Date.now() - started).toBeLessThan(60_000);
  return r.stderr;
}

describe('config files that are not small regular files', () => {
  test('a FIFO is refused at once, naming the file', async () => {
    const p = fifo('audit.fifo');
    for (const args of [['run', '--config', p], ['config', 'validate', p]]) {
      expect(await expectConfigError(args)).toContain(`${p}: not a regular file (a FIFO)`);
    }
  }, 120_000);

  test('/dev/zero is refused, naming the file', async () => {
    expect(await expectConfigError(['run', '--config', '/dev/zero'])).toContain('/dev/zero: not a regular file (a character device)');
  }, 120_000);

  test('a directory is refused, naming the file', async () => {
    const p = join(dir, 'a-folder');
    mkdirSync(p);
    expect(await expectConfigError(['run', '--config', p])).toContain(`${p}: not a regular file (a directory)`);
  }, 120_000);

  test('a file over 1 MiB is refused, naming the limit, without parsing it', async () => {
    const p = file('huge.yaml', `deployment: huge\n${BASE.join('\n')}\n${'# padding\n'.repeat(120_000)}`);
    expect(await expectConfigError(['run', '--config', p])).toContain(`${p}: larger than the 1 MiB limit for a config file (1200`);
  }, 120_000);

  test('a waivers file that is a FIFO is refused too', async () => {
    const w = fifo('waivers.fifo');
    const p = file('with-waivers.yaml', [`deployment: waivered`, ...BASE, `waivers: ${JSON.stringify(w)}`].join('\n'));
    expect(await expectConfigError(['run', '--config', p])).toContain(`${w}: not a regular file (a FIFO)`);
  }, 120_000);
});

describe('YAML built to exhaust the parser', () => {
  test('a billion-laughs alias bomb is exit 2 naming the file', async () => {
    const p = file('laughs.yaml', billionLaughs());
    const err = await expectConfigError(['config', 'validate', p]);
    expect(err).toContain(`${p}: `);
    expect(err).toMatch(/aliases expand to too much/);
  }, 120_000);

  test.each([
    ['a sequence', 'loop: &loop [*loop]'],
    ['a mapping', 'loop: &loop\n  again: *loop'],
    ['a value of the config', 'deployment: selfish\nservices: &s [gateway, *s]'],
  ])('an alias inside its own anchor (%s) is exit 2 naming the file and where', async (_what, yaml) => {
    const p = file(`self-${_what.replace(/\W/g, '')}.yaml`, yaml + '\n');
    const err = await expectConfigError(['config', 'validate', p]);
    expect(err).toMatch(new RegExp(`${p.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}:\\d+:\\d+: .*refers to itself`));
  }, 120_000);
});

describe('names that become paths and labels', () => {
  test.each([
    ['deployment', (v: string) => [`deployment: ${v}`, ...BASE]],
    ['services[0]', (v: string) => ['deployment: ok', `services: [${v}]`, 'sources:', `  secrets: { env_files: { gateway: env/gateway.env } }`]],
    ['sources.deploy.trees', (v: string) => ['deployment: ok', ...BASE.slice(0, 3), `  deploy: { trees: { ${v}: . } }`]],
  ])('a %s of 300 characters is exit 2 naming the key and the limit', async (key, make) => {
    const p = file(`long-${key.replace(/\W/g, '')}.yaml`, make('d'.repeat(300)).join('\n') + '\n');
    const err = await expectConfigError(['config', 'validate', p]);
    expect(err).toContain(key.split('[')[0]);
    expect(err).toMatch(/at most \d+ characters/);
    expect(err).not.toContain('d'.repeat(100));
  }, 120_000);

  test('a deployment with a path separator is exit 2', async () => {
    const p = file('slash.yaml', ['deployment: "../../etc"', ...BASE].join('\n'));
    expect(await expectConfigError(['config', 'validate', p])).toContain('deployment');
  }, 120_000);
});

describe('interpolated values in error texts', () => {
  const VALUE = canaryToken('interpolated-duration', 24);

  test.each([
    ['run.timeout', 'run: { timeout: "${AUDIT_RUN_TIMEOUT}" }', 'AUDIT_RUN_TIMEOUT', VALUE],
    ['run.timeout', 'run: { timeout: "${AUDIT_RUN_TIMEOUT}m" }', 'AUDIT_RUN_TIMEOUT', VALUE],
    ['deployment', null, 'AUDIT_DEPLOYMENT', `prod/${VALUE}`],
    ['server.listen', 'server: { listen: "${AUDIT_LISTEN}" }', 'AUDIT_LISTEN', VALUE],
    ['checks.internal-secret-drift.options.maxOverlap', 'checks: { internal-secret-drift: { options: { maxOverlap: "${AUDIT_OVERLAP}" } } }', 'AUDIT_OVERLAP', VALUE],
  ])('%s from an environment variable (%#): the error names the key and the variable, never the value', async (key, line, variable, value) => {
    const lines = line === null ? [`deployment: "\${${variable}}"`, ...BASE] : ['deployment: interpolated', ...BASE, line];
    const p = file(`interp-${variable}-${line?.length ?? 0}.yaml`, lines.join('\n') + '\n');
    const err = await expectConfigError(['config', 'validate', p], { [variable]: value });
    expect(err).toContain(key);
    expect(err).toContain(`\${${variable}}`);
    expect(findLeaks({ [variable]: value }, new Map([['stderr', err]]))).toEqual([]);
  }, 120_000);
});

describe('a reload to a hostile config keeps the running daemon', () => {
  const reloadsOf = (metrics: string, outcome: string) => Number(new RegExp(`^aegis_compliance_config_reloads_total\\{deployment="[^"]+",outcome="${outcome}"\\} (\\d+)`, 'm').exec(metrics)?.[1]);

  test('a FIFO, an alias bomb and an oversized file in place of the config: each reload fails, /healthz never stops answering', async () => {
    const port = await freePort();
    const good = ['deployment: reloading', ...BASE, `server: { listen: "127.0.0.1:${port}" }`].join('\n') + '\n';
    const cfg = file('reload.yaml', good);
    const d = fork(['daemon', '--config', cfg], {}, dir);
    running.push(d);
    const healthy = async () => (await fetchText(`http://127.0.0.1:${port}/healthz`).catch(() => ({ status: 0 }))).status === 200;
    await waitFor('the daemon', async () => ((await healthy()) ? true : undefined));

    const hostile: [string, () => void][] = [
      ['a FIFO', () => {
        rmSync(cfg);
        execFileSync('mkfifo', [cfg]);
      }],
      ['an alias bomb', () => {
        rmSync(cfg);
        writeFileSync(cfg, billionLaughs());
      }],
      ['an oversized file', () => writeFileSync(cfg, good + '# padding\n'.repeat(120_000))],
    ];
    for (const [i, [what, put]] of hostile.entries()) {
      put();
      d.child.kill('SIGHUP');
      await waitFor(`the refused reload of ${what}`, () => ((d.stderr().match(/Config reload failed/g) ?? []).length > i ? true : undefined), 60_000);
      expect(await healthy()).toBe(true);
      expect(d.child.exitCode).toBeNull();
    }
    const metrics = (await fetchText(`http://127.0.0.1:${port}/metrics`)).body;
    expect({ success: reloadsOf(metrics, 'success'), failure: reloadsOf(metrics, 'failure') }).toEqual({ success: 0, failure: 3 });
    expect(d.stderr()).toContain(`${cfg}: not a regular file (a FIFO)`);

    writeFileSync(cfg, good);
    d.child.kill('SIGHUP');
    await waitFor('the good reload', () => (d.stderr().includes('Configuration reloaded') ? true : undefined), 60_000);
    d.child.kill('SIGTERM');
    expect(await d.exited).toEqual({ code: 0, signal: null });
  }, 240_000);
});
