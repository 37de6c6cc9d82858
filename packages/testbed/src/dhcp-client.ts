import { chmod, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { sleep } from '@calyx/core';
import type { CommandRunner, RunningCommand } from '@calyx/dataplane';

/** What a DHCP client was given, as its script saw it. */
export interface DhcpLease {
  event: string;
  ip: string;
  prefixLength: number;
  router: string;
  dns: string[];
  mtu: number | undefined;
  domain: string;
  /** Classless static routes as `destination via nexthop`. */
  staticRoutes: string[];
}

const UDHCPC_SCRIPT = `#!/bin/sh
# Calyx testbed: configure eth0 from udhcpc and record what was offered. Never touches /etc.
out="$RESULT_FILE"
case "$1" in
  deconfig) ip -4 addr flush dev "$interface"; echo "event=deconfig" >> "$out" ;;
  bound|renew)
    ip addr replace "$ip/$mask" dev "$interface"
    [ -n "$mtu" ] && ip link set dev "$interface" mtu "$mtu"
    [ -n "$router" ] && ip route replace default via "$router" dev "$interface"
    echo "event=$1 ip=$ip mask=$mask router=$router dns=$dns mtu=$mtu domain=$domain staticroutes=$staticroutes" >> "$out" ;;
  leasefail|nak) echo "event=$1" >> "$out" ;;
esac
exit 0
`;

const DHCLIENT_SCRIPT = `#!/bin/sh
# Calyx testbed: configure the interface from dhclient and record what was offered.
out="$RESULT_FILE"
case "$reason" in
  BOUND|RENEW|REBIND|REBOOT)
    ip addr replace "$new_ip_address/$new_subnet_mask" dev "$interface"
    [ -n "$new_interface_mtu" ] && ip link set dev "$interface" mtu "$new_interface_mtu"
    for r in $new_routers; do ip route replace default via "$r" dev "$interface"; break; done
    echo "event=$reason ip=$new_ip_address mask=$new_subnet_mask router=$new_routers dns=$new_domain_name_servers mtu=$new_interface_mtu domain=$new_domain_name staticroutes=$new_rfc3442_classless_static_routes" >> "$out" ;;
  EXPIRE|FAIL|RELEASE|STOP|TIMEOUT) echo "event=$reason" >> "$out" ;;
esac
exit 0
`;

// dhclient only asks for option 121 when it is declared and requested.
const DHCLIENT_CONF = `option rfc3442-classless-static-routes code 121 = array of unsigned integer 8;
request subnet-mask, broadcast-address, routers, domain-name, domain-name-servers, interface-mtu, rfc3442-classless-static-routes;
`;

function maskToPrefix(mask: string): number {
  if (/^\d+$/.test(mask)) return Number(mask);
  return mask.split('.').reduce((n, o) => n + Number(o).toString(2).replace(/0/g, '').length, 0);
}

/** dhclient prints option 121 as a flat byte list: `24 10 99 0 10 65 0 254 0 10 65 0 1`. */
function parseRfc3442(bytes: string): string[] {
  const b = bytes
    .split(/[\s,]+/)
    .filter(Boolean)
    .map(Number);
  const out: string[] = [];
  for (let i = 0; i < b.length;) {
    const len = b[i++]!;
    const n = Math.ceil(len / 8);
    const dst = [...b.slice(i, i + n), 0, 0, 0, 0].slice(0, 4).join('.');
    i += n;
    out.push(`${dst}/${len} via ${b.slice(i, i + 4).join('.')}`);
    i += 4;
  }
  return out;
}

export function parseLeaseLine(line: string): DhcpLease | undefined {
  const kv = Object.fromEntries(
    [...line.matchAll(/(\w+)=([^=]*?)(?=\s+\w+=|$)/g)].map((m) => [m[1]!, m[2]!.trim()]),
  );
  if (!kv.event) return undefined;
  const routes = kv.staticroutes ?? '';
  // udhcpc: "10.99.0.0/16 10.65.0.254 0.0.0.0/0 10.65.0.1"; dhclient: a byte list.
  const staticRoutes = routes.includes('/')
    ? routes
        .split(/\s+/)
        .reduce<string[]>(
          (acc, x, i, all) =>
            i % 2 === 0 && all[i + 1] ? [...acc, `${x} via ${all[i + 1]}`] : acc,
          [],
        )
    : routes
      ? parseRfc3442(routes)
      : [];
  return {
    event: kv.event.toLowerCase(),
    ip: kv.ip ?? '',
    prefixLength: kv.mask ? maskToPrefix(kv.mask) : 0,
    router: (kv.router ?? '').split(/\s+/)[0] ?? '',
    dns: (kv.dns ?? '').split(/\s+/).filter(Boolean),
    mtu: kv.mtu ? Number(kv.mtu) : undefined,
    domain: kv.domain ?? '',
    staticRoutes,
  };
}

/** Runs real DHCP clients inside VM namespaces with scripts that record what they got. */
export class DhcpClients {
  constructor(
    private readonly runner: CommandRunner,
    private readonly dir: string,
  ) {}

  private written?: Promise<{ udhcpc: string; dhclient: string; conf: string }>;

  /**
   * Writes the client scripts once. Rewriting them per client (as this once did) truncates a
   * script a running client may be executing at that moment: it then runs an empty script and
   * the renewal leaves no trace.
   */
  private scripts(): Promise<{ udhcpc: string; dhclient: string; conf: string }> {
    this.written ??= (async () => {
      const udhcpc = join(this.dir, 'udhcpc.sh');
      const dhclient = join(this.dir, 'dhclient.sh');
      const conf = join(this.dir, 'dhclient.conf');
      await writeFile(udhcpc, UDHCPC_SCRIPT, { mode: 0o755 });
      await writeFile(dhclient, DHCLIENT_SCRIPT, { mode: 0o755 });
      await writeFile(conf, DHCLIENT_CONF);
      await chmod(udhcpc, 0o755);
      await chmod(dhclient, 0o755);
      return { udhcpc, dhclient, conf };
    })();
    return this.written;
  }

  async events(vmName: string): Promise<DhcpLease[]> {
    const text = await readFile(join(this.dir, `${vmName}.events`), 'utf8').catch(() => '');
    return text
      .split('\n')
      .map(parseLeaseLine)
      .filter((x): x is DhcpLease => x !== undefined);
  }

  /** One DHCP exchange, then exit: busybox udhcpc (`-q`) or ISC dhclient (`-1`). Returns the lease. */
  async obtain(
    vm: { name: string; netns: string },
    client: 'udhcpc' | 'dhclient' = 'udhcpc',
    timeoutS = 10,
  ): Promise<DhcpLease> {
    const s = await this.scripts();
    const env = { RESULT_FILE: join(this.dir, `${vm.name}.events`) };
    if (client === 'udhcpc') {
      await this.runner.run(
        [
          'busybox',
          'udhcpc',
          '-i',
          'eth0',
          '-n',
          '-q',
          '-f',
          '-s',
          s.udhcpc,
          '-O',
          'mtu',
          '-O',
          'staticroutes',
          '-O',
          'domain',
          '-t',
          String(timeoutS),
          '-T',
          '1',
        ],
        { netns: vm.netns, env, timeoutMs: (timeoutS + 5) * 1000 },
      );
    } else {
      const base = join(this.dir, vm.name);
      await this.runner.run(
        [
          'dhclient',
          '-1',
          '-cf',
          s.conf,
          '-sf',
          s.dhclient,
          '-pf',
          `${base}.dhclient.pid`,
          '-lf',
          `${base}.dhclient.leases`,
          '-e',
          `RESULT_FILE=${env.RESULT_FILE}`,
          'eth0',
        ],
        {
          netns: vm.netns,
          timeoutMs: (timeoutS + 5) * 1000,
        },
      );
      // dhclient daemonizes after binding: stop it, we only wanted the lease.
      const pid = Number((await readFile(`${base}.dhclient.pid`, 'utf8').catch(() => '')).trim());
      if (pid > 0) process.kill(pid, 'SIGTERM');
    }
    const got = (await this.events(vm.name)).filter((e) => e.event === 'bound');
    const lease = got.at(-1);
    if (!lease) throw new Error(`${client} in ${vm.name} obtained no lease`);
    return lease;
  }

  /** A long-running udhcpc; `renew()` sends SIGUSR1 and reports whether the lease was renewed (ACK) or lost. */
  async keep(vm: { name: string; netns: string }): Promise<KeptLease> {
    const s = await this.scripts();
    const events = join(this.dir, `${vm.name}.events`);
    const before = (await this.events(vm.name)).length;
    const pidFile = join(this.dir, `${vm.name}.udhcpc.pid`);
    const child = this.runner.spawn(
      [
        'busybox',
        'udhcpc',
        '-i',
        'eth0',
        '-f',
        '-s',
        s.udhcpc,
        '-O',
        'mtu',
        '-t',
        '5',
        '-T',
        '1',
        '-A',
        '1',
        '-p',
        pidFile,
      ],
      {
        netns: vm.netns,
        env: { RESULT_FILE: events },
        stderrToLines: true,
      },
    );
    const kept = new KeptLease(child, () => this.events(vm.name));
    await kept.waitFor((e) => e.slice(before).some((x) => x.event === 'bound'));
    return kept;
  }
}

export class KeptLease {
  constructor(
    private readonly child: RunningCommand,
    private readonly read: () => Promise<DhcpLease[]>,
  ) {
    // Drain udhcpc's log (stdout and stderr) so it never blocks, and keep the tail for the
    // error message when a condition is not reached.
    void (async () => {
      for await (const line of child.lines) {
        this.output.push(line);
        if (this.output.length > 40) this.output.shift();
      }
    })();
  }

  private readonly output: string[] = [];

  async waitFor(pred: (events: DhcpLease[]) => boolean, timeoutMs = 10_000): Promise<DhcpLease[]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const e = await this.read();
      if (pred(e)) return e;
      if (Date.now() > deadline) {
        throw new Error(
          `DHCP client: condition not reached; events: ${e.map((x) => x.event).join(',')}; ` +
            `udhcpc said: ${this.output.join(' | ')}`,
        );
      }
      await sleep(20);
    }
  }

  /** Asks for a renewal; true when it was renewed, false when the lease was lost (deconfig/nak). */
  async renew(timeoutMs = 10_000): Promise<boolean> {
    const before = (await this.read()).length;
    this.child.kill('SIGUSR1');
    const e = await this.waitFor(
      (ev) =>
        ev
          .slice(before)
          .some((x) => ['renew', 'bound', 'deconfig', 'nak', 'leasefail'].includes(x.event)),
      timeoutMs,
    );
    const fresh = e.slice(before);
    return (
      fresh.some((x) => x.event === 'renew') &&
      !fresh.some((x) => ['deconfig', 'nak', 'leasefail'].includes(x.event))
    );
  }

  async stop(): Promise<void> {
    this.child.kill('SIGTERM');
    await this.child.exited;
  }
}
