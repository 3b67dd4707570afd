/**
 * Real clients pointed at the emulators, configured as wire-protocols.md §F.1 says: static
 * credentials (no provider chain), explicit maxAttempts, and timeouts so that a hung
 * emulator fails a test instead of stalling it.
 */
import { CloudWatchLogsClient } from '@aws-sdk/client-cloudwatch-logs';
import { SSMClient } from '@aws-sdk/client-ssm';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { ConfiguredRetryStrategy } from '@smithy/util-retry';
import NodeVault = require('node-vault');

interface AwsClientOptions {
  maxAttempts?: number;
  /** Use a retry strategy without backoff delay (fast retry tests); attempts = maxAttempts. */
  noBackoff?: boolean;
  requestTimeout?: number;
}

function awsConfig(url: string, opts: AwsClientOptions) {
  const maxAttempts = opts.maxAttempts ?? 1;
  return {
    region: 'us-east-1',
    endpoint: url,
    credentials: { accessKeyId: 'AKIDTEST', secretAccessKey: 'secret' },
    maxAttempts,
    ...(opts.noBackoff ? { retryStrategy: new ConfiguredRetryStrategy(maxAttempts, 0) } : {}),
    // Without throwOnRequestTimeout the handler only logs a warning and waits forever on a hung server.
    requestHandler: new NodeHttpHandler({
      requestTimeout: opts.requestTimeout ?? 15_000,
      connectionTimeout: 10_000,
      throwOnRequestTimeout: true,
    }),
  };
}

export function ssmClient(url: string, opts: AwsClientOptions = {}): SSMClient {
  return new SSMClient(awsConfig(url, opts));
}

export function logsClient(url: string, opts: AwsClientOptions = {}): CloudWatchLogsClient {
  return new CloudWatchLogsClient(awsConfig(url, opts));
}

export function vaultClient(url: string, token: string | undefined, timeout = 15_000): NodeVault.client {
  return NodeVault({ endpoint: url, token, noCustomHTTPVerbs: true, requestOptions: { timeout } });
}

/** The rejection of a promise, failing the test if it resolves. */
export async function rejection(p: Promise<unknown>): Promise<Record<string, unknown> & Error> {
  try {
    await p;
  } catch (err) {
    if (err instanceof Error) return err as Record<string, unknown> & Error;
    throw new Error(`rejected with a non-Error: ${String(err)}`);
  }
  throw new Error('expected the call to fail, but it succeeded');
}

/** `$metadata.httpStatusCode` of an SDK error. */
export function httpStatus(err: Record<string, unknown>): number | undefined {
  const meta = err.$metadata;
  if (typeof meta !== 'object' || meta === null) return undefined;
  const code = (meta as Record<string, unknown>).httpStatusCode;
  return typeof code === 'number' ? code : undefined;
}

/** Raw POST in AWS JSON 1.1, for wire-level assertions the SDK hides. */
export async function awsPost(
  url: string,
  target: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: Headers; text: string }> {
  const res = await fetch(`${url}/`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': target, ...headers },
    body: JSON.stringify(body),
  });
  return { status: res.status, headers: res.headers, text: await res.text() };
}
