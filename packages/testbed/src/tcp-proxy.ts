import { createConnection, createServer, type Server, type Socket } from 'node:net';

/**
 * A loopback TCP proxy for fault injection between a client and a server (etcd, Redis):
 * `cut()` drops every connection at once (and, while `down`, refuses new ones); `restore()`
 * lets connections through again. Counts what it forwarded, so a test can cut in the middle
 * of a transfer.
 */
export class TcpProxy {
  private readonly pairs = new Set<[Socket, Socket]>();
  private down = false;
  /** Bytes sent from the server to clients since start. */
  bytesToClient = 0;
  /** Connections accepted since start. */
  connections = 0;
  private readonly listeners: ((bytes: number) => void)[] = [];
  private cutAt: number | undefined;

  private constructor(
    private readonly server: Server,
    readonly port: number,
    private readonly target: { host: string; port: number },
  ) {}

  /** Listens on 127.0.0.1 (a free port) and forwards to `target`. */
  static async start(target: { host?: string; port: number }): Promise<TcpProxy> {
    const to = { host: target.host ?? '127.0.0.1', port: target.port };
    const ready: { proxy?: TcpProxy } = {};
    const server = createServer((client) => {
      if (ready.proxy) ready.proxy.accept(client);
      else client.destroy();
    });
    const port = await new Promise<number>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        const a = server.address();
        if (typeof a === 'object' && a) resolve(a.port);
        else reject(new Error('proxy has no port'));
      });
    });
    ready.proxy = new TcpProxy(server, port, to);
    return ready.proxy;
  }

  /** `127.0.0.1:port` — what the client should dial. */
  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  private accept(client: Socket): void {
    if (this.down) {
      client.destroy();
      return;
    }
    this.connections++;
    const upstream = createConnection(this.target);
    const pair: [Socket, Socket] = [client, upstream];
    this.pairs.add(pair);
    const close = () => {
      client.destroy();
      upstream.destroy();
      this.pairs.delete(pair);
    };
    client.on('error', close);
    upstream.on('error', close);
    client.on('close', close);
    upstream.on('close', close);
    client.on('data', (d) => upstream.write(d));
    upstream.on('data', (d) => {
      if (this.cutAt !== undefined && this.bytesToClient + d.length >= this.cutAt) {
        // Exactly this many bytes reach the client, then every connection drops.
        const keep = Math.max(0, this.cutAt - this.bytesToClient);
        this.cutAt = undefined;
        this.bytesToClient += keep;
        client.write(d.subarray(0, keep), () => this.cut());
        return;
      }
      this.bytesToClient += d.length;
      client.write(d);
      for (const l of this.listeners) l(this.bytesToClient);
    });
  }

  /** Resolves once at least `bytes` have gone from the server to clients. */
  waitForBytesToClient(bytes: number): Promise<void> {
    if (this.bytesToClient >= bytes) return Promise.resolve();
    return new Promise((resolve) => {
      const l = (n: number) => {
        if (n < bytes) return;
        this.listeners.splice(this.listeners.indexOf(l), 1);
        resolve();
      };
      this.listeners.push(l);
    });
  }

  /**
   * Cuts every connection the moment `bytes` more have gone to clients: the client holds a
   * truncated stream, whatever it buffers. Resolves when the cut has happened.
   */
  cutAfterBytesToClient(bytes: number): Promise<void> {
    this.cutAt = this.bytesToClient + bytes;
    return this.waitForCut();
  }

  private waitForCut(): Promise<void> {
    return new Promise((resolve) => {
      const poll = () => (this.cutAt === undefined ? resolve() : setTimeout(poll, 5));
      poll();
    });
  }

  /** Drops every open connection; with `stayDown`, refuses new ones until `restore()`. */
  cut(opts: { stayDown?: boolean } = {}): void {
    if (opts.stayDown) this.down = true;
    for (const [a, b] of this.pairs) {
      a.destroy();
      b.destroy();
    }
    this.pairs.clear();
  }

  restore(): void {
    this.down = false;
  }

  get openConnections(): number {
    return this.pairs.size;
  }

  async close(): Promise<void> {
    this.cut({ stayDown: true });
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}
