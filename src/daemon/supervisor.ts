/**
 * `daemon` and `demo --daemon` as a process: runs the daemon of a config file until SIGINT
 * or SIGTERM, reloading the config on SIGHUP. The signals come from {@link ProcessSignals},
 * installed by the command before anything slow starts, so none of them ever meets Node's
 * default action. An unhandled rejection anywhere is logged, never fatal.
 */
import { resolve } from 'node:path';
import { loadConfig, type LoadedConfig } from '../config/load';
import { loadRunInputs } from '../app/run';
import type { Registry } from '../core/registry';
import type { Logger } from '../core/logger';
import { describeError } from '../core/redact';
import { metasFromChecks, writeOutputs } from '../outputs';
import { startDaemon, type Daemon } from './index';
import type { ProcessSignals } from './signals';

export interface SuperviseOptions {
  configFile: string;
  registry: Registry;
  /** `host:port` from the command line, overriding `server.listen`. */
  listen?: string;
  /** Report directory overriding `outputs.dir` (demo). */
  out?: string;
  logger: Logger;
  signals: ProcessSignals;
  /** Told the address each time a daemon starts listening. */
  onListening?: (address: string) => void;
  /** How long shutdown waits for running checks. */
  shutdownDeadlineMs?: number;
}

/** Runs until a stop signal; resolves once the daemon is closed. A bad config at start throws (exit 2). */
export async function superviseDaemon(opts: SuperviseOptions): Promise<void> {
  const { registry, logger, signals } = opts;
  const start = async (loaded: LoadedConfig): Promise<Daemon> => {
    const { waivers, attestations } = await loadRunInputs(loaded, registry, new Date());
    const outDir = resolve(opts.out ?? loaded.config.outputs.dir);
    const metas = metasFromChecks(registry.values());
    const daemon = await startDaemon({
      loaded,
      registry,
      listen: opts.listen,
      logger,
      shutdownDeadlineMs: opts.shutdownDeadlineMs,
      htmlReportPath: resolve(outDir, 'report.html'),
      auditOptions: { waivers: waivers.active, expiredWaivers: waivers.expired },
      onReport: async (_report, merged) => {
        await writeOutputs(merged, { dir: outDir, formats: loaded.config.outputs.formats, metas, attestations });
      },
    });
    opts.onListening?.(daemon.address);
    return daemon;
  };

  const onRejection = (reason: unknown) => logger.error({ err: describeError(reason) }, 'Unhandled rejection (kept running)');
  process.on('unhandledRejection', onRejection);
  let daemon: Daemon | undefined;
  try {
    daemon = await start(loadConfig(opts.configFile, { registry }));
    for (;;) {
      const sig = await signals.next();
      if (sig !== 'SIGHUP') {
        logger.info({ signal: sig }, 'Shutting down');
        break;
      }
      let next: LoadedConfig;
      try {
        next = loadConfig(opts.configFile, { registry });
        await loadRunInputs(next, registry, new Date());
      } catch (e) {
        logger.error({ err: describeError(e) }, 'Config reload failed; keeping the running configuration');
        continue;
      }
      await daemon.close();
      daemon = undefined;
      daemon = await start(next);
      logger.info({ digest: next.digest }, 'Configuration reloaded');
    }
  } finally {
    await daemon?.close();
    process.off('unhandledRejection', onRejection);
  }
}
