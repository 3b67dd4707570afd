/**
 * Loopback emulators of AWS SSM, CloudWatch Logs, S3 and HashiCorp Vault for the sandbox, the
 * integration tests and the demo. The real clients (@aws-sdk/client-ssm,
 * @aws-sdk/client-cloudwatch-logs, @aws-sdk/client-s3, node-vault) talk to them over HTTP on 127.0.0.1.
 */
export { FAULT_KINDS, FaultController, type ActiveFault, type FaultKind, type FaultOptions } from './faults';
export type { RunningEmulator, StartOptions } from './listener';
export type { PagingPolicy } from './paging';
export { AwsServiceError } from './aws-json';
export {
  SsmEmulator,
  type AddCommandInput,
  type CommandStatus,
  type InvocationStatus,
  type ParameterType,
  type PutParameterInput,
  type SeedInvocation,
  type SsmEmulatorOptions,
  type SsmPagedOperation,
} from './ssm';
export { LogsEmulator, type LogsEmulatorOptions, type SeedLogEvent } from './logs';
export { compileFilterPattern, FilterPatternError } from './logs-filter-pattern';
export { VaultEmulator, type CreatedToken, type CreateTokenOptions, type VaultEmulatorOptions } from './vault';
export type { PutKvOptions } from './vault-kv';
export type { Capability, PolicyRules } from './vault-policy';
export type { CreateTransitKeyOptions } from './vault-transit';
export { S3Emulator, type PutObjectInput, type S3EmulatorOptions } from './s3';
