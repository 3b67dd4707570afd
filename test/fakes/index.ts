export { FakeAuditDb, type FakeAuditDbData, type AuditDbMethod } from './audit-db';
export { FakeLogSource, MemoryRawStream, type FakeLogLine } from './log-source';
export { FakeSecretStore, type FakeHolder, type FakeSigningKey } from './secret-store';
export { MemoryStateStore } from './state-store';
export { AuditLogBuilder, TestKey, referenceRowHash } from './audit-log';
export { Failures } from './failures';
export { FakeRepoSource, type FakeRepoFile } from './repo-source';
