/**
 * Creates the sources of one run from config. A source that is not configured stays
 * undefined (its checks are skipped); creating a source never connects — failures surface
 * when a check uses it, as that check's `error`.
 */
import type { Sources } from '../core/sources';
import type { KnownSecrets } from '../core/secret';
import type { Logger } from '../core/logger';
import type { AuditConfig } from '../config/schema';
import { FileLogSource } from './log-files';
import { CompositeSecretStore, envAndPemBackends, registerEnvValue, type SecretBackend } from './secrets';
import type { CloudWatchLogSource } from './cloudwatch-logs';
import { HttpPrometheusSource } from './prometheus';
import { FsDeploySource } from './deploy-files';

// The clients of a source (pg, the AWS SDK, node-vault, the TLS prober's JOSE and X.509
// libraries) load only when the config names it: start-up is paid by every one-shot run.
/* eslint-disable @typescript-eslint/no-require-imports */
const postgres = () => require('./postgres') as typeof import('./postgres');
const cloudwatch = () => require('./cloudwatch-logs') as typeof import('./cloudwatch-logs');
const ssmModule = () => require('./ssm') as typeof import('./ssm');
const vaultModule = () => require('./vault') as typeof import('./vault');
const artifactsModule = () => require('./artifacts') as typeof import('./artifacts');
const endpointsModule = () => require('./endpoints') as typeof import('./endpoints');
/* eslint-enable @typescript-eslint/no-require-imports */
import { FsRepoSource } from './repo-files';

/**
 * Loads the client modules of every source `config` names, without creating a source (the
 * daemon, before it listens: loading is synchronous, and would otherwise hold up its first
 * answers while the first cycle opens the sources).
 */
export function loadSourceModules(config: AuditConfig): void {
  if (config.sources.postgres) postgres();
  if (config.sources.logs?.cloudwatch) cloudwatch();
  if (config.sources.secrets?.ssm) ssmModule();
  if (config.sources.secrets?.vault) vaultModule();
  if (config.sources.artifacts) artifactsModule();
  if (config.sources.endpoints) endpointsModule();
}

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
  // A password in a URL the config points at is a secret of the run, whichever client might echo it.
  for (const url of [config.sources.postgres?.url, config.sources.prometheus?.url, config.state.postgres?.url, config.leader_lock?.url, config.queue?.url]) {
    if (url) registerEnvValue(deps.knownSecrets, 'url', url);
  }
  const pg = config.sources.postgres;
  if (pg) {
    const db = new (postgres().PostgresAuditDb)(pg);
    sources.postgres = db;
    closers.push(() => db.close());
  }
  const logs = config.sources.logs;
  if (logs) {
    const lookback = { lookbackMs: logs.lookback };
    const fileLogs = logs.files ? new FileLogSource(logs.files, logs.window, lookback) : undefined;
    let cwLogs: CloudWatchLogSource | undefined;
    if (logs.cloudwatch) {
      const cw = new (cloudwatch().CloudWatchLogSource)(logs.cloudwatch, logs.window, lookback);
      closers.push(async () => cw.close());
      cwLogs = cw;
    }
    // Both configured: each service's events come from whichever has it, merged in time order.
    sources.logs = fileLogs && cwLogs ? new (cloudwatch().CombinedLogSource)([fileLogs, cwLogs], logs.window, lookback) : (cwLogs ?? fileLogs);
  }
  const sec = config.sources.secrets;
  if (sec) {
    const backends: SecretBackend[] = envAndPemBackends(sec, deps.knownSecrets);
    if (sec.ssm) {
      const { AwsSsmSource, SsmClientHandle, SsmSecretBackend } = ssmModule();
      const ssm = new SsmClientHandle(sec.ssm);
      closers.push(async () => ssm.close());
      sources.ssm = new AwsSsmSource(ssm);
      backends.push(new SsmSecretBackend(ssm, sec.signing_key_service, deps.knownSecrets));
    }
    if (sec.vault) {
      const { NodeVaultSource, VaultClientHandle, VaultSecretBackend } = vaultModule();
      const handle = new VaultClientHandle(sec.vault, deps.knownSecrets);
      closers.push(async () => handle.close());
      const vault = new NodeVaultSource(handle);
      sources.vault = vault;
      backends.push(new VaultSecretBackend(vault, handle, sec.signing_key_service));
    }
    if (backends.length > 0) sources.secrets = new CompositeSecretStore(backends, config.services);
  }
  if (config.sources.prometheus) {
    const prom = new HttpPrometheusSource(config.sources.prometheus);
    closers.push(async () => prom.close());
    sources.prometheus = prom;
  }
  if (config.sources.deploy) sources.deploy = new FsDeploySource(config.sources.deploy);
  if (config.sources.artifacts) {
    const artifacts = new (artifactsModule().ArtifactLocations)(config.sources.artifacts);
    closers.push(async () => artifacts.close());
    sources.artifacts = artifacts;
  }
  if (config.sources.repo) sources.repo = new FsRepoSource(config.sources.repo);
  if (config.sources.endpoints) sources.endpoints = new (endpointsModule().TlsEndpointSource)(config.sources.endpoints, deps.knownSecrets);
  return {
    sources,
    async close() {
      await Promise.all(closers.map((c) => c().catch(() => undefined)));
    },
  };
}
