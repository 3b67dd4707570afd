/** An in-memory SsmSource: deploy commands, their outputs and parameter metadata. */
import type { SsmCommand, SsmInvocationOutput, SsmParameterMeta, SsmSource } from '../../src/core/sources';
import { Failures } from './failures';

export interface FakeSsmCommand {
  commandId: string;
  requestedAt: string | Date;
  documentName?: string;
  status?: string;
  instanceIds?: string[];
  parameters?: Record<string, string[]>;
  /** Plugin outputs per instance. */
  outputs?: { instanceId: string; output: string; pluginName?: string }[];
}

export class FakeSsmSource implements SsmSource {
  readonly path: string;
  readonly deployDocument: string;
  readonly historyMs?: number;
  readonly failures = new Failures<'commands' | 'outputs' | 'parameters'>('ssm');
  readonly #commands: FakeSsmCommand[];
  readonly #parameters: SsmParameterMeta[];
  /** The `since` of every commands() query, to assert the history window a check used. */
  readonly queries: { documentName: string; since: Date }[] = [];

  constructor(data: { commands?: FakeSsmCommand[]; parameters?: SsmParameterMeta[]; path?: string; deployDocument?: string; historyMs?: number } = {}) {
    this.#commands = data.commands ?? [];
    this.#parameters = data.parameters ?? [];
    this.path = data.path ?? '/aegis/test';
    this.deployDocument = data.deployDocument ?? 'aegis-deploy';
    this.historyMs = data.historyMs;
  }

  fail(method: 'commands' | 'outputs' | 'parameters', error?: Error): this {
    this.failures.set(method, error);
    return this;
  }

  async *commands(q: { documentName: string; since: Date }): AsyncIterable<SsmCommand> {
    this.queries.push({ documentName: q.documentName, since: q.since });
    this.failures.check('commands');
    const out = this.#commands
      .map((c) => ({
        commandId: c.commandId,
        documentName: c.documentName ?? 'aegis-deploy',
        requestedAt: new Date(c.requestedAt),
        status: c.status ?? 'Success',
        instanceIds: c.instanceIds ?? ['i-0123456789abcdef0'],
        parameters: c.parameters ?? {},
      }))
      .filter((c) => c.documentName === q.documentName && c.requestedAt >= q.since)
      .sort((a, b) => b.requestedAt.getTime() - a.requestedAt.getTime());
    yield* out;
  }

  async *outputs(commandId: string): AsyncIterable<SsmInvocationOutput> {
    this.failures.check('outputs');
    const c = this.#commands.find((x) => x.commandId === commandId);
    for (const o of c?.outputs ?? []) yield { commandId, instanceId: o.instanceId, pluginName: o.pluginName ?? 'deploy', output: o.output };
  }

  async *parameters(): AsyncIterable<SsmParameterMeta> {
    this.failures.check('parameters');
    yield* this.#parameters;
  }
}
