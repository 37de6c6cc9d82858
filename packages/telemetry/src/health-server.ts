import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { silentLogger, type Logger } from '@calyx/core';
import type { Registry } from 'prom-client';

/** The outcome of a liveness or readiness check: ok, or the reasons it is not. */
export interface CheckResult {
  ok: boolean;
  /** Why not (shown in the response body, one per line). */
  reasons?: readonly string[];
}

export type HealthCheck = () => CheckResult | Promise<CheckResult>;

export interface HealthServerOptions {
  /** Bind address. Keep it off the VM-facing interfaces: 127.0.0.1 or a management address. */
  host: string;
  /** 0 picks a free port (tests). */
  port: number;
  registry: Registry;
  /** `/livez`: the process works (its loops run). */
  live: HealthCheck;
  /** `/readyz`: in sync with the datastore and the dataplane programmed. */
  ready: HealthCheck;
  logger?: Logger;
}

/**
 * `/livez`, `/readyz` and Prometheus `/metrics` over plain HTTP. 200 when a check passes,
 * 503 with the reasons when it does not; anything else is 404. `?verbose` is accepted and
 * ignored, as Kubernetes probes send it.
 */
export class HealthServer {
  private server: Server | undefined;
  private readonly logger: Logger;

  constructor(private readonly opts: HealthServerOptions) {
    this.logger = (opts.logger ?? silentLogger).child({ component: 'health' });
  }

  /**
   * Serves a program's checks and metrics at `address`, started; undefined when the program
   * is configured without one.
   */
  static async serve(
    address: { host: string; port: number } | undefined,
    program: {
      readonly metrics: { readonly registry: Registry };
      live: HealthCheck;
      ready: HealthCheck;
    },
    logger?: Logger,
  ): Promise<HealthServer | undefined> {
    if (!address) return undefined;
    const server = new HealthServer({
      ...address,
      registry: program.metrics.registry,
      live: () => program.live(),
      ready: () => program.ready(),
      ...(logger ? { logger } : {}),
    });
    await server.start();
    return server;
  }

  /** Listens; resolves with the bound address (the real port when asked for 0). */
  async start(): Promise<{ host: string; port: number }> {
    if (this.server) throw new Error('HealthServer already started');
    const server = createServer((req, res) => void this.handle(req, res));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.opts.port, this.opts.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    const a = server.address() as AddressInfo;
    this.bound = { host: a.address, port: a.port };
    this.logger.info(this.bound, 'health and metrics listening');
    return this.bound;
  }

  private bound: { host: string; port: number } | undefined;

  /** The bound address once started. */
  get address(): { host: string; port: number } | undefined {
    return this.bound;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0];
    try {
      if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, 'GET only\n');
      if (path === '/metrics') {
        const body = await this.opts.registry.metrics();
        return send(res, 200, body, this.opts.registry.contentType);
      }
      if (path === '/livez' || path === '/readyz') {
        const r = await (path === '/livez' ? this.opts.live : this.opts.ready)();
        return r.ok
          ? send(res, 200, 'ok\n')
          : send(res, 503, `${(r.reasons ?? ['not ok']).join('\n')}\n`);
      }
      return send(res, 404, 'not found: try /livez, /readyz or /metrics\n');
    } catch (e) {
      this.logger.warn({ err: (e as Error).message, path }, 'health request failed');
      return send(res, 500, `${(e as Error).message}\n`);
    }
  }

  async close(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

function send(res: ServerResponse, status: number, body: string, type = 'text/plain'): void {
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
  res.end(body);
}
