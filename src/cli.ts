/**
 * The `aegis-audit` command line. Exit codes: 0 all evaluated checks pass, 1 findings at
 * or above --fail-on, 2 usage or configuration error (no stack trace), 3 a check could not
 * be evaluated and nothing failed.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { Command, CommanderError, Option } from 'commander';
import { registry } from '../checks';
import { loadConfig } from './config/load';
import { runAudit } from './app/audit';
import { formatSummary } from './app/summary';
import { ErrorCodes, isAuditError } from './core/errors';
import { createLogger } from './core/logger';
import { EXIT, exitCodeFor, TOOL_VERSION } from './core/report';
import { KnownSecrets } from './core/secret';
import { SEVERITIES, type Report, type Severity } from './core/types';
import { describeError } from './core/redact';

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

async function writeReport(report: Report, dir: string): Promise<string> {
  await mkdir(dir, { recursive: true });
  const file = join(dir, 'report.json');
  await writeFile(file, JSON.stringify(report, null, 2) + '\n', 'utf8');
  return file;
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

  const failOn = () =>
    new Option('--fail-on <severity>', 'lowest severity that fails the run').choices([...SEVERITIES]);

  program
    .command('run')
    .description('run the checks once, write reports, exit with the verdict')
    .requiredOption('-c, --config <file>', 'audit.yaml')
    .option('--checks <ids>', 'comma-separated check ids to run', parseList)
    .option('-o, --out <dir>', 'output directory')
    .addOption(failOn())
    .action(async (opts: { config: string; checks?: string[]; out?: string; failOn?: Severity }) => {
      const knownSecrets = new KnownSecrets();
      const logger = createLogger({ knownSecrets });
      const loaded = loadConfig(opts.config, { registry });
      const report = await runAudit(loaded, registry, { only: opts.checks, logger, knownSecrets });
      const dir = resolve(opts.out ?? loaded.config.outputs.dir);
      await writeReport(report, dir);
      io.out(formatSummary(report));
      setExit(exitCodeFor(report, opts.failOn ?? loaded.config.run.fail_on));
    });

  const checks = program.command('checks').description('the check catalog');
  checks
    .command('list')
    .description('list the registered checks')
    .option('--json', 'as JSON')
    .action((opts: { json?: boolean }) => {
      const metas = [...registry.values()].map((c) => c.meta);
      if (opts.json) {
        io.out(JSON.stringify(metas, null, 2) + '\n');
        return;
      }
      const w = Math.max(...metas.map((m) => m.id.length), 2);
      for (const m of metas) {
        const srcs = m.sources.map((s) => (typeof s === 'string' ? s : s.join('|'))).join('+');
        io.out(`${m.id.padEnd(w)}  ${m.severity.padEnd(8)}  ${srcs.padEnd(18)}  ${m.title}\n`);
      }
    });

  const config = program.command('config').description('configuration');
  config
    .command('validate <file>')
    .description('validate a config file (exit 2 when invalid)')
    .action((file: string) => {
      const loaded = loadConfig(file, { registry });
      io.out(`${loaded.file}: valid (deployment ${loaded.config.deployment}, ${Object.keys(loaded.config.sources).length} source groups)\n`);
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
