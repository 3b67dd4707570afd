/**
 * The HTTP listener every emulator runs on: 127.0.0.1 only, a port of the caller's choice
 * (0 = any free one), a close that also destroys keep-alive sockets (the AWS SDK's agents keep
 * them open, and jest reports them as open handles), and the emulator-wide `refuse` fault,
 * which closes the port and reopens the same one when the fault is cleared.
 */
import { createServer, type IncomingMessage, type RequestListener, type Server, type ServerResponse } from 'node:http';
import type { FaultController } from './faults';

export interface StartOptions {
  /** 0 or omitted = a free port chosen by the OS. */
  port?: number;
}

export interface RunningEmulator {
  /** `http://127.0.0.1:<port>`, without a trailing slash. */
  url: string;
  port: number;
  close(): Promise<void>;
}

const HOST = '127.0.0.1';

export class LoopbackListener {
  private server: Server | undefined;
  private port = 0;
  private listening = false;

  constructor(
    private readonly name: string,
    private readonly handler: RequestListener,
    private readonly faults: FaultController,
  ) {
    faults.setRefuseHook((refusing) => (refusing ? this.stopListening() : this.resumeListening()));
  }

  async start(options: StartOptions = {}): Promise<RunningEmulator> {
    if (this.server) throw new Error(`${this.name} emulator is already started`);
    const server = createServer((req: IncomingMessage, res: ServerResponse) => this.handler(req, res));
    // Hung requests must not be cut off by Node's own request timeout: the test decides.
    server.requestTimeout = 0;
    this.server = server;
    await this.listen(options.port ?? 0);
    if (this.faults.isRefusing()) await this.stopListening();
    return { url: `http://${HOST}:${this.port}`, port: this.port, close: () => this.close() };
  }

  async close(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    await this.stopListeningOn(server);
  }

  private listen(port: number): Promise<void> {
    const server = this.server;
    if (!server) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const onError = (err: Error): void => reject(err);
      server.once('error', onError);
      server.listen(port, HOST, () => {
        server.off('error', onError);
        const addr = server.address();
        this.port = typeof addr === 'object' && addr ? addr.port : port;
        this.listening = true;
        resolve();
      });
    });
  }

  private async stopListening(): Promise<void> {
    if (!this.server) return;
    await this.stopListeningOn(this.server);
    // Give in-process clients a moment to see their keep-alive sockets close, so that their next
    // request gets ECONNREFUSED, as from a stopped service, rather than a reset on a stale socket.
    await new Promise((resolve) => setTimeout(resolve, 25));
  }

  private stopListeningOn(server: Server): Promise<void> {
    if (!this.listening) return Promise.resolve();
    this.listening = false;
    return new Promise((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }

  private async resumeListening(): Promise<void> {
    // Reopen the same port so clients configured with the old URL reconnect.
    if (this.server && !this.listening) await this.listen(this.port);
  }
}

/** Read a request body, refusing more than `limit` bytes (every emulator input is small). */
export function readBody(req: IncomingMessage, limit = 1024 * 1024): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) tooLarge = true;
      else chunks.push(chunk);
    });
    req.on('end', () => resolve(tooLarge ? undefined : Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/** Where the `malformed` fault cuts a body: valid-looking JSON that stops mid-value. */
export function truncatedJson(body: string): string {
  return body.slice(0, Math.max(1, Math.floor(body.length / 2)));
}
