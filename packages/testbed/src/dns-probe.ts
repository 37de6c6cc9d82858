import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { CommandRunner, RunningCommand } from '@calyx/dataplane';

// Runs inside the namespace: for each "name server port" line, queries until the name
// resolves (dnsmasq answers nothing while it re-reads its files, and NXDOMAIN until it has),
// then prints "ok <ms>".
const PROBE = `
import { createSocket } from 'node:dgram';
import { createInterface } from 'node:readline';
function query(name, server, port) {
  return new Promise((resolve) => {
    const s = createSocket('udp4');
    const id = Math.floor(Math.random() * 65535);
    const parts = name.split('.').flatMap((p) => [Buffer.from([p.length]), Buffer.from(p)]);
    const q = Buffer.concat([Buffer.from([id >> 8, id & 255, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0]), ...parts, Buffer.from([0, 0, 1, 0, 1])]);
    const t = setTimeout(() => { s.close(); resolve(-1); }, 1000);
    s.on('message', (m) => { if (m.readUInt16BE(0) !== id) return; clearTimeout(t); s.close(); resolve(m[3] & 15); });
    s.send(q, port, server);
  });
}
for await (const line of createInterface({ input: process.stdin })) {
  const [name, server, port] = line.trim().split(' ');
  const t0 = performance.now();
  for (;;) { if ((await query(name, server, Number(port))) === 0) break; }
  process.stdout.write('ok ' + (performance.now() - t0).toFixed(3) + '\\n');
}
`;

/** A DNS prober living in a namespace: `resolve()` returns when the name resolves there. */
export class DnsProbe {
  private readonly lines: AsyncIterator<string>;

  private constructor(private readonly child: RunningCommand) {
    this.lines = child.lines[Symbol.asyncIterator]();
  }

  static async start(runner: CommandRunner, netns: string, dir: string): Promise<DnsProbe> {
    const file = join(dir, 'dnsprobe.mjs');
    await writeFile(file, PROBE);
    return new DnsProbe(runner.spawn([process.execPath, file], { netns, stdin: true }));
  }

  /** Resolves when `name` answers NOERROR from `server` (retrying through NXDOMAIN and silence). */
  async resolve(name: string, server: string, port = 53): Promise<void> {
    if (!/^[A-Za-z0-9.-]+$/.test(name)) throw new Error(`bad name ${name}`);
    this.child.write(`${name} ${server} ${port}\n`);
    const r = await this.lines.next();
    if (r.done || !r.value.startsWith('ok')) throw new Error(`DNS probe ended: ${String(r.value)}`);
  }

  async stop(): Promise<void> {
    this.child.kill();
    await this.child.exited;
  }
}
