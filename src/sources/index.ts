/**
 * Creates the sources of one run from config. A source that is not configured stays
 * undefined (its checks are skipped); creating a source never connects — failures surface
 * when a check uses it, as that check's `error`.
 */
import type { Sources } from '../core/sources';
import type { KnownSecrets } from '../core/secret';
import type { Logger } from '../core/logger';
import type { AuditConfig } from '../config/schema';
import { PostgresAuditDb } from './postgres';
import { FileLogSource } from './log-files';
import { CompositeSecretStore, envAndPemBackends, type SecretBackend } from './secrets';

export interface SourceDeps {
  knownSecrets: KnownSecrets;
  logger: Logger;
}

export interface OpenSources {
  sources: Sources;
  close(): Promise<void>;
}

export function createSources(config: AuditConfig, deps: SourceDeps): OpenSources {
  const sources: Sources = {};
  const closers: (() => Promise<void>)[] = [];
  const pg = config.sources.postgres;
  if (pg) {
    const db = new PostgresAuditDb(pg);
    sources.postgres = db;
    closers.push(() => db.close());
  }
  const logs = config.sources.logs;
  if (logs?.files) sources.logs = new FileLogSource(logs.files, logs.window);
  const sec = config.sources.secrets;
  if (sec) {
    const backends: SecretBackend[] = envAndPemBackends(sec, deps.knownSecrets);
    if (backends.length > 0) sources.secrets = new CompositeSecretStore(backends, config.services);
  }
  return {
    sources,
    async close() {
      await Promise.all(closers.map((c) => c().catch(() => undefined)));
    },
  };
}
