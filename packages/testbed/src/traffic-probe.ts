import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { CommandRunner, RunningCommand } from '@calyx/dataplane';

// Runs inside a VM namespace. Listens on the given TCP and UDP ports (IPv4 and IPv6): a TCP
// server writes the address it sees the client as, a UDP server echoes it and remembers every
// sender. Answers JSON requests on stdin, one per line, concurrently, by id.
const PROBE = `
import { createServer, connect } from 'node:net';
import { createSocket } from 'node:dgram';
import { createInterface } from 'node:readline';
const cfg = JSON.parse(process.argv[2]);
const seen = new Map();
const strip = (a) => a.startsWith('::ffff:') ? a.slice(7) : a;
const listening = [];
for (const port of cfg.tcp) {
  const s = createServer((c) => { c.on('error', () => {}); c.end(strip(c.remoteAddress)); });
  listening.push(new Promise((r) => s.listen({ port, host: '::', ipv6Only: false }, r)));
}
for (const port of cfg.udp) {
  const s = createSocket({ type: 'udp6', ipv6Only: false });
  seen.set(port, []);
  s.on('message', (m, rinfo) => {
    const from = strip(rinfo.address);
    seen.get(port).push(from);
    s.send(from, rinfo.port, rinfo.address);
  });
  listening.push(new Promise((r) => s.bind({ port, address: '::' }, r)));
}
await Promise.all(listening);
const out = (o) => process.stdout.write(JSON.stringify(o) + '\\n');
out({ id: 0, ok: true });
function tcp(q) {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const c = connect({ host: q.host, port: q.port, ...(q.source ? { localAddress: q.source } : {}) });
    let data = '';
    const done = (r) => { clearTimeout(timer); c.destroy(); resolve({ ...r, ms: performance.now() - t0 }); };
    const timer = setTimeout(() => done({ ok: false, error: 'timeout' }), q.timeoutMs);
    c.on('data', (d) => { data += d; });
    c.on('end', () => done({ ok: true, seenAs: data }));
    c.on('error', (e) => done({ ok: false, error: e.code === 'ECONNREFUSED' ? 'refused' : String(e.code || e.message) }));
  });
}
function udp(q) {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const s = createSocket(q.host.includes(':') ? 'udp6' : 'udp4');
    const done = (r) => { clearTimeout(timer); s.close(); resolve({ ...r, ms: performance.now() - t0 }); };
    const timer = setTimeout(() => done({ ok: false, error: 'timeout' }), q.timeoutMs);
    s.on('message', (m) => done({ ok: true, seenAs: String(m) }));
    s.on('error', (e) => done({ ok: false, error: String(e.code || e.message) }));
    s.bind({ port: 0, ...(q.source ? { address: q.source } : {}) }, () => s.send('probe', q.port, q.host));
  });
}
for await (const line of createInterface({ input: process.stdin })) {
  const q = JSON.parse(line);
  if (q.op === 'seen') { out({ id: q.id, ok: true, seen: seen.get(q.port) ?? [] }); seen.set(q.port, []); continue; }
  (q.proto === 'udp' ? udp(q) : tcp(q)).then((r) => out({ id: q.id, ...r }));
}
`;

export interface ConnectResult {
  ok: boolean;
  /** 'timeout' (dropped), 'refused' (rejected or nothing listening), or another errno. */
  error?: string;
  /** The address the server saw the client as (NAT shows here). */
  seenAs?: string;
  ms: number;
}

interface Reply extends Partial<ConnectResult> {
  id: number;
  seen?: string[];
}

/**
 * TCP and UDP traffic from and to a VM namespace: servers on chosen ports, and connects
 * (optionally from a chosen source address) answered by what really happened on the wire.
 */
export class TrafficProbe {
  private nextId = 1;
  private readonly pending = new Map<number, (r: Reply) => void>();
  private readonly reading: Promise<void>;
  private readonly ready: Promise<void>;

  private constructor(private readonly child: RunningCommand) {
    let markReady!: () => void;
    this.ready = new Promise((r) => (markReady = r));
    this.reading = (async () => {
      for await (const line of child.lines) {
        const reply = JSON.parse(line) as Reply;
        if (reply.id === 0) markReady();
        this.pending.get(reply.id)?.(reply);
        this.pending.delete(reply.id);
      }
      const { stderr } = await child.exited;
      for (const resolve of this.pending.values())
        resolve({ id: -1, ok: false, error: `probe exited: ${stderr.trim()}` });
      this.pending.clear();
      markReady();
    })();
  }

  get pid(): number {
    return this.child.pid;
  }

  /** Starts the probe in `netns` with servers on `tcp` and `udp` ports; resolves once they listen. */
  static async start(
    runner: CommandRunner,
    netns: string,
    dir: string,
    ports: { tcp?: readonly number[]; udp?: readonly number[] } = {},
  ): Promise<TrafficProbe> {
    const file = join(dir, 'traffic-probe.mjs');
    await writeFile(file, PROBE);
    const cfg = JSON.stringify({ tcp: ports.tcp ?? [], udp: ports.udp ?? [] });
    const probe = new TrafficProbe(
      runner.spawn([process.execPath, file, cfg], { netns, stdin: true }),
    );
    await probe.ready;
    return probe;
  }

  private request(q: Record<string, unknown>): Promise<Reply> {
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.pending.set(id, resolve);
      this.child.write(JSON.stringify({ id, ...q }) + '\n');
    });
  }

  /** Connects (TCP) or sends a datagram and waits for the echo (UDP). */
  async connect(
    proto: 'tcp' | 'udp',
    host: string,
    port: number,
    opts: { timeoutMs?: number; source?: string } = {},
  ): Promise<ConnectResult> {
    const r = await this.request({
      proto,
      host,
      port,
      timeoutMs: opts.timeoutMs ?? 1000,
      ...(opts.source ? { source: opts.source } : {}),
    });
    return {
      ok: r.ok ?? false,
      ms: r.ms ?? 0,
      ...(r.error ? { error: r.error } : {}),
      ...(r.seenAs !== undefined ? { seenAs: r.seenAs } : {}),
    };
  }

  /** Senders the UDP server on `port` has heard from since the last call. */
  async seen(port: number): Promise<string[]> {
    return (await this.request({ op: 'seen', port })).seen ?? [];
  }

  async stop(): Promise<void> {
    this.child.kill();
    await this.child.exited;
    await this.reading;
  }
}
