/**
 * Shared configuration of the AWS clients (SSM, CloudWatch Logs): region, endpoint,
 * credentials (standard chain, or static ones named by env var for the sandbox), retry
 * budget and socket timeouts. The SDK's defaults would hang for minutes on a silent endpoint
 * and keep keep-alive sockets open after a run, so both are set explicitly here.
 */
import { NodeHttpHandler } from '@smithy/node-http-handler';
import type { AwsCredentialIdentity, AwsCredentialIdentityProvider } from '@smithy/types';

/** The fields every AWS source config shares (see `awsCommon` in src/config/schema.ts). */
export interface AwsSourceConfig {
  region: string;
  endpoint?: string;
  max_attempts: number;
  timeout: number;
  credentials_env?: { access_key_id: string; secret_access_key: string; session_token?: string };
}

export interface AwsClientConfig {
  region: string;
  endpoint?: string;
  credentials?: AwsCredentialIdentityProvider;
  maxAttempts: number;
  retryMode: 'standard';
  requestHandler: NodeHttpHandler;
}

/**
 * Static credentials read from the named environment variables at call time, so a missing
 * variable fails the checks that use the source (with the variable's name) rather than the
 * whole run. Without `credentials_env` the SDK's standard provider chain applies.
 */
function envCredentials(names: NonNullable<AwsSourceConfig['credentials_env']>, source: string): AwsCredentialIdentityProvider {
  return async (): Promise<AwsCredentialIdentity> => {
    const get = (field: string, name: string): string => {
      const v = process.env[name];
      if (!v) throw new Error(`${source}: environment variable ${name} (credentials_env.${field}) is not set`);
      return v;
    };
    const sessionToken = names.session_token ? get('session_token', names.session_token) : undefined;
    return {
      accessKeyId: get('access_key_id', names.access_key_id),
      secretAccessKey: get('secret_access_key', names.secret_access_key),
      ...(sessionToken ? { sessionToken } : {}),
    };
  };
}

/**
 * Client options for one AWS source. `timeout` bounds both the connection and the whole
 * request; the SDK retries timeouts, throttling and 5xx up to `max_attempts` in total.
 */
export function awsClientConfig(cfg: AwsSourceConfig, source: string): AwsClientConfig {
  const requestHandler = new NodeHttpHandler({
    connectionTimeout: Math.min(cfg.timeout, 5_000),
    requestTimeout: cfg.timeout,
    // Without this the handler only warns when requestTimeout passes and the call hangs on.
    throwOnRequestTimeout: true,
    socketTimeout: cfg.timeout,
  });
  return {
    region: cfg.region,
    ...(cfg.endpoint ? { endpoint: cfg.endpoint } : {}),
    ...(cfg.credentials_env ? { credentials: envCredentials(cfg.credentials_env, source) } : {}),
    maxAttempts: cfg.max_attempts,
    retryMode: 'standard',
    requestHandler,
  };
}

/** Paginators stop when the token is falsy; this bounds a server that repeats tokens forever. */
export const MAX_PAGES = 100_000;
