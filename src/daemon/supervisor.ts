/**
 * `daemon` and `demo --daemon` as a process: runs the daemon of a config file until SIGINT
 * or SIGTERM, reloading the config on SIGHUP. The signals come from {@link ProcessSignals},
 * installed by the command before anything slow starts, so none of them ever meets Node's
 * default action. An unhandled rejection anywhere is logged, never fatal.
 *
 * A reload starts the new before it stops the old: the new config's daemon is built and
 * started — its listener (the running one when the address is unchanged, else a new one),
 * its schedules, its first cycle — and only then takes over the listener and the old daemon
 * is closed. Anything that fails on the way (a config that does not validate, waivers that
 * do not load, an address already in use) leaves the old daemon running untouched; it is
 * logged and counted in `aegis_compliance_config_reloads_total{outcome="failure"}`.
 */
import { resolve } from 'node:path';
import { deploymentOutDir, linkFrom, loadFleetFile, type LoadedFleet } from '../config/fleet';
import type { LoadedConfig } from '../config/load';
import { loadRunInputs, type RunInputs } from '../app/run';
import { AuditError } from '../core/errors';
import { indexEntry, reportFileFor, writeFleetIndex } from '../outputs/fleet-index';
import type { Registry } from '../core/registry';
import type { Logger } from '../core/logger';
import { describeError } from '../core/redact';
import { metasFromChecks, writeOutputs } from '../outputs';
import type { ReloadCounts } from '../outputs/metrics';
import type { Report } from '../core/types';
import { preloadFleet, startDaemon, type Daemon } from './index';
import { startServer, startingState, type RunningServer } from './server';
import { lowerThreadsBut, niceFromEnv } from '../core/threads';
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
  /** Told the address each time a new listener is opened. */
  onListening?: (address: string) => void;
  /** How long shutdown waits for running checks. */
  shutdownDeadlineMs?: number;
}

interface Active {
  daemon: Daemon;
  server: RunningServer;
  /** The address asked for (`host:0` stays one listener across reloads). */
  listen: string;
}

/** Runs until a stop signal; resolves once the daemon and its listener are closed. A bad config at start throws (exit 2). */
export async function superviseDaemon(opts: SuperviseOptions): Promise<void> {
  const { registry, logger, signals } = opts;
  const reloads: ReloadCounts = { success: 0, failure: 0 };
  let active: Active | undefined;

  /**
   * Starts the daemon of `fleet` beside the active one and swaps it in; throws (the active one
   * untouched) on any failure. Deployments added to the config start, removed ones stop (their
   * series go with the old daemon's registry).
   */
  const startAndSwap = async (fleet: LoadedFleet, reload = false): Promise<void> => {
    // The built-in checks plus the config's plugins.
    const checks = fleet.registry;
    const inputs = new Map<LoadedConfig, RunInputs>();
    for (const loaded of fleet.deployments) {
      try {
        inputs.set(loaded, await loadRunInputs(loaded, checks, new Date()));
      } catch (e) {
        if (e instanceof AuditError && !fleet.single) throw new AuditError(e.code, `deployment ${loaded.config.deployment}: ${e.message}`);
        throw e;
      }
    }
    const byName = new Map(fleet.deployments.map((d) => [d.config.deployment, d]));
    const outDirOf = (loaded: LoadedConfig) => deploymentOutDir(fleet, loaded.config, opts.out);
    const outRoot = resolve(opts.out ?? fleet.settings.outputsDir);
    const metas = metasFromChecks(checks.values());
    const listen = opts.listen ?? fleet.settings.server.listen;
    const reused = active && active.listen === listen ? active.server : undefined;
    let opened: RunningServer | undefined;
    let daemon: Daemon | undefined;
    try {
      preloadFleet(fleet, checks, logger);
      opened = reused ? undefined : await startServer(startingState(), listen, logger);
      // The HTTP thread keeps the process's priority; every other thread — this one, the checks',
      // V8's compilers and collectors, and every thread started from now on (worker pools) — runs
      // below it, so a scrape is answered first whatever the checks are doing.
      if (opened) lowerThreadsBut(opened.threadId, niceFromEnv('AEGIS_AUDIT_CHECKS_NICE', 10));
      const latest = new Map<string, Report>();
      /**
       * The index beside the deployments' folders, from the daemon's latest reports. Writes are
       * coalesced — one at a time, the requests made meanwhile served by one more, at most one a
       * second — so a fleet of thousands does not rewrite it after every check.
       */
      let indexWrite: Promise<void> | undefined;
      let again = false;
      const writeIndex = (): Promise<void> => {
        if (indexWrite) {
          again = true;
          return indexWrite;
        }
        indexWrite = (async () => {
          do {
            again = false;
            const entries = fleet.deployments.map((d) => {
              const name = d.config.deployment;
              const file = reportFileFor(d.config.outputs.formats);
              // Linked once the deployment's files are written (they are, before its first report counts here).
              return indexEntry(name, latest.get(name), latest.has(name) && file ? linkFrom(outRoot, resolve(outDirOf(d), file)) : undefined);
            });
            await writeFleetIndex(outRoot, entries, { generatedAt: new Date() });
            if (again) await new Promise((r) => setTimeout(r, 1_000).unref());
          } while (again);
        })().finally(() => {
          indexWrite = undefined;
          // Asked for between the last write and here: one more.
          if (again) void writeIndex().catch((e: unknown) => logger.error({ err: describeError(e) }, 'Writing the fleet index failed'));
        });
        return indexWrite;
      };
      daemon = await startDaemon({
        fleet,
        registry: checks,
        server: reused ?? opened,
        logger,
        reloads: () => reloads,
        shutdownDeadlineMs: opts.shutdownDeadlineMs,
        htmlReportPath: resolve(outDirOf(fleet.deployments[0]), 'report.html'),
        htmlReportPathOf: (name) => resolve(outDirOf(byName.get(name) as LoadedConfig), 'report.html'),
        auditOptionsOf: (loaded) => {
          const { waivers } = inputs.get(loaded) as RunInputs;
          return { waivers: waivers.active, expiredWaivers: waivers.expired };
        },
        onReport: async (_report, merged) => {
          const loaded = byName.get(merged.deployment);
          if (!loaded) return;
          const { attestations } = inputs.get(loaded) as RunInputs;
          await writeOutputs(merged, { dir: outDirOf(loaded), formats: loaded.config.outputs.formats, metas, attestations });
          if (fleet.single) return;
          latest.set(merged.deployment, merged);
          await writeIndex();
        },
      });
    } catch (e) {
      await daemon?.close();
      await opened?.close(0);
      throw e;
    }
    const server = (reused ?? opened) as RunningServer;
    // A reload has succeeded once the new config runs: counted before its first answer.
    if (reload) reloads.success++;
    server.setState(daemon.serverState);
    const old = active;
    active = { daemon, server, listen };
    if (opened) opts.onListening?.(opened.address);
    if (old) {
      await old.daemon.close();
      if (old.server !== server) await old.server.close(2_000);
      // With a leader lock the new daemon could not take it while the old one held it: now it can.
      if (!daemon.isLeader()) void daemon.runNow();
    }
  };

  const onRejection = (reason: unknown) => logger.error({ err: describeError(reason) }, 'Unhandled rejection (kept running)');
  process.on('unhandledRejection', onRejection);
  try {
    await startAndSwap(await loadFleetFile(opts.configFile, { registry }));
    for (;;) {
      const sig = await signals.next();
      if (sig !== 'SIGHUP') {
        logger.info({ signal: sig }, 'Shutting down');
        break;
      }
      try {
        const next = await loadFleetFile(opts.configFile, { registry });
        await startAndSwap(next, true);
        logger.info({ digest: next.digest }, 'Configuration reloaded');
      } catch (e) {
        reloads.failure++;
        active?.daemon.metrics.reloadsChanged();
        logger.error({ err: describeError(e) }, 'Config reload failed; keeping the running configuration');
      }
    }
  } finally {
    const last = active;
    active = undefined;
    if (last) {
      await last.daemon.close();
      await last.server.close(2_000);
    }
    process.off('unhandledRejection', onRejection);
  }
}
