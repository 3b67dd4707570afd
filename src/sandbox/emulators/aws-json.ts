/**
 * AWS JSON 1.1 server plumbing (wire-protocols.md §A): POST to any path ending in `/`,
 * `content-type: application/x-amz-json-1.1`, dispatch on `x-amz-target: <Prefix>.<Operation>`,
 * `x-amzn-RequestId` on every answer, errors as `{"__type", "message"|"Message"}` plus the
 * `X-Amzn-ErrorType` header (and never a `code` field, which the SDK would prefer over both).
 *
 * The v3 SDK validates nothing on the client side, so the handlers validate ranges themselves
 * through {@link Input}, which throws the ValidationException the real service sends.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import type { FaultController } from './faults';
import { readBody, truncatedJson } from './listener';

export type JsonObject = Record<string, unknown>;

export function isJsonObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A modeled (or well-known) AWS error. `messageKey` follows the service model's member name. */
export class AwsServiceError extends Error {
  readonly status: number;
  readonly messageKey: 'message' | 'Message' | undefined;

  constructor(
    readonly errorType: string,
    message?: string,
    options: { status?: number; messageKey?: 'message' | 'Message' } = {},
  ) {
    super(message ?? errorType);
    this.status = options.status ?? 400;
    // No key at all when there is no message: several SSM errors have no members in the model.
    this.messageKey = message === undefined ? undefined : (options.messageKey ?? 'message');
  }
}

function validationError(detail: string): AwsServiceError {
  return new AwsServiceError('ValidationException', `1 validation error detected: ${detail}`);
}

function serializationError(member: string, expected: string): AwsServiceError {
  return new AwsServiceError('SerializationException', `Unexpected value for '${member}': expected ${expected}`, {
    messageKey: 'Message',
  });
}

/** The member name as AWS spells it in validation messages (lower camel case). */
function wireName(member: string): string {
  return member.charAt(0).toLowerCase() + member.slice(1);
}

/** Typed, range-checked access to an operation's input. */
export class Input {
  constructor(private readonly body: JsonObject) {}

  has(member: string): boolean {
    return this.body[member] !== undefined && this.body[member] !== null;
  }

  string(member: string, opts: { required?: boolean; min?: number; max?: number } = {}): string | undefined {
    const v = this.body[member];
    if (v === undefined || v === null) {
      if (opts.required) {
        throw validationError(`Value null at '${wireName(member)}' failed to satisfy constraint: Member must not be null`);
      }
      return undefined;
    }
    if (typeof v !== 'string') throw serializationError(member, 'a string');
    if (opts.min !== undefined && v.length < opts.min) {
      throw validationError(
        `Value '${v}' at '${wireName(member)}' failed to satisfy constraint: Member must have length greater than or equal to ${opts.min}`,
      );
    }
    if (opts.max !== undefined && v.length > opts.max) {
      throw validationError(
        `Value at '${wireName(member)}' failed to satisfy constraint: Member must have length less than or equal to ${opts.max}`,
      );
    }
    return v;
  }

  integer(member: string, opts: { min?: number; max?: number } = {}): number | undefined {
    const v = this.body[member];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'number' || !Number.isInteger(v)) throw serializationError(member, 'an integer');
    if (opts.min !== undefined && v < opts.min) {
      throw validationError(
        `Value '${v}' at '${wireName(member)}' failed to satisfy constraint: Member must have value greater than or equal to ${opts.min}`,
      );
    }
    if (opts.max !== undefined && v > opts.max) {
      throw validationError(
        `Value '${v}' at '${wireName(member)}' failed to satisfy constraint: Member must have value less than or equal to ${opts.max}`,
      );
    }
    return v;
  }

  boolean(member: string): boolean {
    const v = this.body[member];
    if (v === undefined || v === null) return false; // the SDK never fills in model defaults
    if (typeof v !== 'boolean') throw serializationError(member, 'a boolean');
    return v;
  }

  stringList(member: string, opts: { min?: number; max?: number } = {}): string[] | undefined {
    const v = this.body[member];
    if (v === undefined || v === null) return undefined;
    if (!Array.isArray(v) || !v.every((s): s is string => typeof s === 'string')) {
      throw serializationError(member, 'a list of strings');
    }
    this.checkCount(member, v.length, opts);
    return v;
  }

  objectList(member: string, opts: { min?: number; max?: number } = {}): Input[] | undefined {
    const v = this.body[member];
    if (v === undefined || v === null) return undefined;
    if (!Array.isArray(v) || !v.every(isJsonObject)) throw serializationError(member, 'a list of structures');
    this.checkCount(member, v.length, opts);
    return v.map((o) => new Input(o));
  }

  private checkCount(member: string, n: number, opts: { min?: number; max?: number }): void {
    if (opts.min !== undefined && n < opts.min) {
      throw validationError(
        `Value at '${wireName(member)}' failed to satisfy constraint: Member must have length greater than or equal to ${opts.min}`,
      );
    }
    if (opts.max !== undefined && n > opts.max) {
      throw validationError(
        `Value at '${wireName(member)}' failed to satisfy constraint: Member must have length less than or equal to ${opts.max}`,
      );
    }
  }
}

export type AwsOperation = (input: Input) => JsonObject;

export interface AwsJsonService {
  /** X-Amz-Target prefix: `AmazonSSM` or `Logs_20140328`. */
  targetPrefix: string;
  /** SigV4 signing name, used in AccessDenied messages (`ssm`, `logs`). */
  signingName: string;
  region: string;
  accountId: string;
  operations: Readonly<Record<string, AwsOperation>>;
  /** The resource named in a fault's AccessDenied message. */
  resourceArn: (operation: string, input: Input) => string;
}

const CONTENT_TYPE = 'application/x-amz-json-1.1';

function send(res: ServerResponse, status: number, body: string, extra: Record<string, string> = {}): void {
  res.writeHead(status, {
    'Content-Type': CONTENT_TYPE,
    'Content-Length': Buffer.byteLength(body),
    'x-amzn-RequestId': randomUUID(),
    ...extra,
  });
  res.end(body);
}

function sendError(res: ServerResponse, err: AwsServiceError): void {
  const body: JsonObject = { __type: err.errorType };
  if (err.messageKey) body[err.messageKey] = err.message;
  send(res, err.status, JSON.stringify(body), { 'X-Amzn-ErrorType': err.errorType });
}

/** The error a fault produces; undefined for faults that are not an HTTP answer. */
function faultError(service: AwsJsonService, kind: string, operation: string, input: Input): AwsServiceError | undefined {
  switch (kind) {
    case 'throttle':
      return new AwsServiceError('ThrottlingException', 'Rate exceeded');
    case 'forbidden':
      return new AwsServiceError(
        'AccessDeniedException',
        `User: arn:aws:sts::${service.accountId}:assumed-role/aegis-audit/session is not authorized to perform: ` +
          `${service.signingName}:${operation} on resource: ${service.resourceArn(operation, input)} ` +
          `because no identity-based policy allows the ${service.signingName}:${operation} action`,
      );
    case 'server-error':
      return new AwsServiceError('InternalServerError', 'An internal error occurred.', {
        status: 500,
        messageKey: 'Message',
      });
    default:
      return undefined;
  }
}

export function createAwsJsonHandler(service: AwsJsonService, faults: FaultController): RequestListener {
  return (req: IncomingMessage, res: ServerResponse) => {
    handle(service, faults, req, res).catch((err: unknown) => {
      // A bug in a handler must still produce an answer, as the real service would.
      if (!res.headersSent) {
        const message = err instanceof Error ? err.message : String(err);
        sendError(res, new AwsServiceError('InternalServerError', message, { status: 500, messageKey: 'Message' }));
      } else res.destroy();
    });
  };
}

async function handle(
  service: AwsJsonService,
  faults: FaultController,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const target = req.headers['x-amz-target'];
  const prefix = `${service.targetPrefix}.`;
  const operation =
    typeof target === 'string' && target.startsWith(prefix) ? target.slice(prefix.length) : '(unknown)';
  const fault = faults.onRequest(operation);
  if (fault === 'refuse') {
    req.socket.destroy();
    return;
  }
  if (fault === 'hang') return; // answered never; the listener's close destroys the socket

  const raw = await readBody(req);
  const path = (req.url ?? '/').split('?')[0] ?? '/';
  if (req.method !== 'POST' || !path.endsWith('/')) {
    sendError(res, new AwsServiceError('UnknownOperationException', undefined, { status: 404 }));
    return;
  }
  const contentType = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
  if (contentType !== CONTENT_TYPE) {
    sendError(res, new AwsServiceError('SerializationException', `Expected content-type ${CONTENT_TYPE}`));
    return;
  }
  const handler = Object.prototype.hasOwnProperty.call(service.operations, operation)
    ? service.operations[operation]
    : undefined;
  if (!handler) {
    sendError(res, new AwsServiceError('UnknownOperationException'));
    return;
  }
  if (raw === undefined) {
    sendError(res, new AwsServiceError('SerializationException', 'Request body too large', { status: 413 }));
    return;
  }
  let body: unknown;
  try {
    body = raw.length === 0 ? {} : JSON.parse(raw.toString('utf8'));
  } catch {
    sendError(res, new AwsServiceError('SerializationException', 'Request body is not valid JSON'));
    return;
  }
  if (!isJsonObject(body)) {
    sendError(res, new AwsServiceError('SerializationException', 'Request body must be a JSON object'));
    return;
  }
  const input = new Input(body);
  const faultAnswer = fault ? faultError(service, fault, operation, input) : undefined;
  if (faultAnswer) {
    sendError(res, faultAnswer);
    return;
  }
  let output: JsonObject;
  try {
    output = handler(input);
  } catch (err) {
    if (err instanceof AwsServiceError) {
      sendError(res, err);
      return;
    }
    throw err;
  }
  const text = JSON.stringify(output);
  send(res, 200, fault === 'malformed' ? truncatedJson(text) : text);
}
