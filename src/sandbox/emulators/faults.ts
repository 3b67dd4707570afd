/**
 * Fault injection and request counting, shared by the SSM, CloudWatch Logs and Vault emulators.
 *
 * A fault is switched on at runtime, for the whole emulator or for one operation (the AWS
 * operation name such as `GetParametersByPath`, or a Vault route name such as `kv-read`), and
 * optionally for a limited number of requests (`times`), so a test can say "throttle the next
 * two calls, then succeed" and assert that the client retried.
 *
 * How each kind looks on the wire is the emulator's business; this module only decides which
 * fault applies to a request and keeps the counts.
 */

export const FAULT_KINDS = ['refuse', 'hang', 'throttle', 'forbidden', 'server-error', 'malformed'] as const;

/**
 * - `refuse`: emulator-wide, the listener is closed and every socket destroyed (clients get
 *   ECONNREFUSED until the fault is cleared; requests are not counted because none arrive).
 *   For one operation, the socket is destroyed when the request arrives (ECONNRESET).
 * - `hang`: the request is accepted and never answered (clients need a timeout).
 * - `throttle`: AWS 400 ThrottlingException "Rate exceeded"; Vault 429.
 * - `forbidden`: AWS 400 AccessDeniedException; Vault 403 permission denied.
 * - `server-error`: AWS 500 InternalServerError; Vault 500.
 * - `malformed`: 200 with a truncated, non-JSON body.
 */
export type FaultKind = (typeof FAULT_KINDS)[number];

export interface FaultOptions {
  /** Only requests for this operation; omitted = every request to the emulator. */
  operation?: string;
  /** Apply to this many requests, then switch off by itself; omitted = until cleared. */
  times?: number;
}

export interface ActiveFault {
  kind: FaultKind;
  operation?: string;
  /** Uses left; undefined = unlimited. */
  remaining?: number;
}

/** Called when an emulator-wide `refuse` is switched on (true) or off (false). */
export type RefuseHook = (refusing: boolean) => Promise<void>;

const ALL = '*';

export class FaultController {
  private readonly faults = new Map<string, ActiveFault>();
  private readonly counts = new Map<string, number>();
  private refuseHook: RefuseHook | undefined;

  /** Wired by the emulator's listener; not for tests. */
  setRefuseHook(hook: RefuseHook): void {
    this.refuseHook = hook;
  }

  /** Switch a fault on. Resolves once it is in effect (for `refuse`, once the port is closed). */
  async inject(kind: FaultKind, options: FaultOptions = {}): Promise<void> {
    if (!FAULT_KINDS.includes(kind)) throw new Error(`unknown fault kind: ${String(kind)}`);
    const { operation, times } = options;
    if (times !== undefined && (!Number.isInteger(times) || times < 1)) {
      throw new Error(`fault times must be a positive integer, got ${times}`);
    }
    const wide = operation === undefined;
    if (kind === 'refuse' && wide && times !== undefined) {
      // A closed port receives no requests, so there is nothing to count the uses against.
      throw new Error('an emulator-wide refuse cannot be limited with `times`; clear it instead');
    }
    const previous = this.faults.get(operation ?? ALL);
    this.faults.set(operation ?? ALL, { kind, operation, remaining: times });
    if (wide && kind === 'refuse') await this.refuseHook?.(true);
    else if (wide && previous?.kind === 'refuse') await this.refuseHook?.(false);
  }

  /** Switch off the fault for one operation, or every fault when no operation is given. */
  async clear(operation?: string): Promise<void> {
    const wasRefusing = this.faults.get(ALL)?.kind === 'refuse';
    if (operation === undefined) this.faults.clear();
    else this.faults.delete(operation);
    if (wasRefusing && this.faults.get(ALL)?.kind !== 'refuse') await this.refuseHook?.(false);
  }

  active(): ActiveFault[] {
    return [...this.faults.values()].map((f) => ({ ...f }));
  }

  /** True while an emulator-wide refuse is on (the listener uses it after a restart). */
  isRefusing(): boolean {
    return this.faults.get(ALL)?.kind === 'refuse';
  }

  /**
   * Count one request and return the fault to apply to it, if any. A fault for the operation
   * wins over an emulator-wide one; a limited fault is used up here.
   */
  onRequest(operation: string): FaultKind | undefined {
    this.counts.set(operation, (this.counts.get(operation) ?? 0) + 1);
    const key = this.faults.has(operation) ? operation : this.faults.has(ALL) ? ALL : undefined;
    if (key === undefined) return undefined;
    const fault = this.faults.get(key);
    if (!fault) return undefined;
    if (fault.remaining !== undefined) {
      fault.remaining -= 1;
      if (fault.remaining <= 0) this.faults.delete(key);
    }
    return fault.kind;
  }

  /** Requests received for one operation, or in total. */
  requestCount(operation?: string): number {
    if (operation !== undefined) return this.counts.get(operation) ?? 0;
    let total = 0;
    for (const n of this.counts.values()) total += n;
    return total;
  }

  requestCounts(): Record<string, number> {
    return Object.fromEntries(this.counts);
  }

  resetCounts(): void {
    this.counts.clear();
  }
}
