import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { median, result, type BenchmarkResult, type BenchmarkSuite } from '@calyx/bench';
import { DnsProbe, Testbed, type TestHost } from '@calyx/testbed';
import { DnsmasqProgrammer, renderCommandLine, renderOpts, type DnsmasqInstance } from './index.js';

const mac = (i: number) =>
  `fa:16:3e:${((i >> 16) & 255).toString(16).padStart(2, '0')}:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`;
const ip = (i: number) => `10.65.${(i >> 8) & 255}.${i & 255}`;
const name = (i: number) => `host-${ip(i).replace(/\./g, '-')}`;

function instance(from: number, to: number): DnsmasqInstance {
  return {
    name: 'bench',
    interfaceName: 'ns-bench',
    subnets: [
      {
        tag: 'sub-bench',
        network: '10.65.0.0',
        prefixLength: 16,
        gateway: '10.65.0.1',
        dnsServers: [],
        mtu: 1500,
        classlessRoutes: [],
      },
    ],
    hosts: Array.from({ length: to - from }, (_, k) => ({
      mac: mac(from + k),
      ip: ip(from + k),
      hostname: name(from + k),
    })),
  };
}

/**
 * The floor: dnsmasq the classic way (Neutron's, Calico's): one hosts file and one names file,
 * rewritten beforehand (untimed), then a bare SIGHUP.
 */
class ClassicDnsmasq {
  private constructor(
    private readonly dir: string,
    private readonly pid: number,
  ) {}

  static async start(
    bed: Testbed,
    host: TestHost,
    from: number,
    to: number,
  ): Promise<ClassicDnsmasq> {
    const dir = await bed.tempDir('classic');
    await bed.exec(host.netns, [
      'ip',
      'link',
      'add',
      'ns-bench',
      'type',
      'veth',
      'peer',
      'name',
      'nq-bench',
    ]);
    await bed.exec(host.netns, [
      'ip',
      'addr',
      'add',
      '10.65.0.1/16',
      'dev',
      'ns-bench',
      'noprefixroute',
    ]);
    await bed.exec(host.netns, ['ip', 'link', 'set', 'ns-bench', 'up']);
    await bed.exec(host.netns, ['ip', 'link', 'set', 'nq-bench', 'up']);
    const c = new ClassicDnsmasq(dir, 0);
    await c.write(from, to);
    await writeFile(join(dir, 'opts'), renderOpts(instance(0, 0)));
    await writeFile(join(dir, 'leases'), '');
    await mkdir(join(dir, 'empty.d'));
    const paths = {
      dir,
      hosts: join(dir, 'host'),
      addnHosts: join(dir, 'addn_hosts'),
      hostsDir: join(dir, 'empty.d'),
      namesDir: join(dir, 'empty.d'),
      opts: join(dir, 'opts'),
      leases: join(dir, 'leases'),
      pid: join(dir, 'pid'),
      log: join(dir, 'log'),
    };
    const argv = renderCommandLine(instance(from, to), paths, {
      domain: 'calyxlocal',
      leaseSeconds: 86400,
      endpointInterfacePattern: 'tap*',
      user: 'root',
      logDhcp: false,
    });
    await bed.exec(host.netns, argv);
    const pid = Number((await readFile(join(dir, 'pid'), 'utf8')).trim());
    return new ClassicDnsmasq(dir, pid);
  }

  async write(from: number, to: number): Promise<void> {
    const hosts: string[] = [];
    const names: string[] = [];
    for (let i = from; i < to; i++) {
      hosts.push(`${mac(i)},${ip(i)},${name(i)}\n`);
      names.push(`${ip(i)}\t${name(i)}.calyxlocal\t${name(i)}\n`);
    }
    await writeFile(join(this.dir, 'host'), hosts.join(''));
    await writeFile(join(this.dir, 'addn_hosts'), names.join(''));
  }

  sighup(): void {
    process.kill(this.pid, 'SIGHUP');
  }

  stop(): void {
    process.kill(this.pid, 'SIGTERM');
  }
}

/** The Neutron peer script (../shared/peers), when this checkout sits beside it. */
function neutronPeer(): string | undefined {
  const candidates = [
    process.env.CALYX_PEERS_DIR,
    resolve(import.meta.dirname, '../../../../shared/peers'),
  ].filter((p): p is string => !!p);
  return candidates.map((d) => join(d, 'neutron_dhcp.py')).find((f) => existsSync(f));
}

export const suite: BenchmarkSuite = {
  id: 'dataplane-dnsmasq',
  title:
    'dnsmasq: a port added (or removed) until dnsmasq answers again, vs a bare SIGHUP with the same files, vs Neutron',
  needsRoot: true,
  async run(ctx) {
    const sizes = ctx.quick ? [100] : [100, 1_000, 10_000];
    const out: BenchmarkResult[] = [];
    for (const n of sizes) {
      const rounds = n >= 10_000 ? 3 : 5;
      const bed = await Testbed.create();
      try {
        // Calyx, and the classic floor beside it, each in its own host namespace.
        const hc = await bed.addHost('calyx');
        const hf = await bed.addHost('floor');
        const dnsmasq = new DnsmasqProgrammer({
          runner: bed.runner,
          netns: hc.netns,
          stateDir: await bed.tempDir('dnsmasq'),
          reloadDebounceMs: 60_000,
        });
        const FIRST = 10;
        await dnsmasq.apply([instance(FIRST, FIRST + n)]);
        const classic = await ClassicDnsmasq.start(bed, hf, FIRST, FIRST + n);
        const pc = await DnsProbe.start(bed.runner, hc.netns, await bed.tempDir('probe'));
        const pf = await DnsProbe.start(bed.runner, hf.netns, await bed.tempDir('probe'));
        await pc.resolve(`${name(FIRST)}.calyxlocal`, '10.65.0.1');
        await pf.resolve(`${name(FIRST)}.calyxlocal`, '10.65.0.1');
        const add: number[] = [];
        const addFloor: number[] = [];
        const remove: number[] = [];
        const removeFloor: number[] = [];
        let to = FIRST + n;
        for (let r = 0; r < rounds; r++) {
          // Add one port: Calyx writes one file (dnsmasq reads it via inotify); timed until the new name answers.
          let t0 = performance.now();
          await dnsmasq.apply([instance(FIRST, to + 1)]);
          await pc.resolve(`${name(to)}.calyxlocal`, '10.65.0.1');
          add.push(performance.now() - t0);
          await classic.write(FIRST, to + 1);
          t0 = performance.now();
          classic.sighup();
          await pf.resolve(`${name(to)}.calyxlocal`, '10.65.0.1');
          addFloor.push(performance.now() - t0);
          to++;
          // Remove one port: Calyx removes its files and reloads (a SIGHUP); timed until dnsmasq answers again.
          t0 = performance.now();
          await dnsmasq.apply([instance(FIRST, to - 1)]);
          dnsmasq.flush(); // the debounce window is policy, not work: measured without it
          await pc.resolve(`${name(FIRST)}.calyxlocal`, '10.65.0.1');
          remove.push(performance.now() - t0);
          await classic.write(FIRST, to - 1);
          t0 = performance.now();
          classic.sighup();
          await pf.resolve(`${name(FIRST)}.calyxlocal`, '10.65.0.1');
          removeFloor.push(performance.now() - t0);
          to--;
        }
        await pc.stop();
        await pf.stop();
        classic.stop();
        const starts = dnsmasq.starts;
        await dnsmasq.removeAll();
        if (starts !== 1)
          throw new Error(`dnsmasq was restarted during the benchmark (${starts} starts)`);
        const fmt = (xs: number[]) => xs.map((x) => x.toFixed(1)).join(', ');
        ctx.log(
          `n=${n}: add ${fmt(add)} ms (floor ${fmt(addFloor)}); remove ${fmt(remove)} ms (floor ${fmt(removeFloor)})`,
        );

        // The peer: Neutron's Dnsmasq driver, reload_allocations after one port added.
        let neutron: number | undefined;
        const peer = neutronPeer();
        if (peer && existsSync('/usr/bin/python3')) {
          const nh = await bed.addHost('neutron');
          await bed.exec(nh.netns, [
            'ip',
            'link',
            'add',
            'ns-d0',
            'type',
            'veth',
            'peer',
            'name',
            'ns-d0p',
          ]);
          await bed.exec(nh.netns, ['ip', 'addr', 'add', '10.65.0.1/16', 'dev', 'ns-d0']);
          await bed.exec(nh.netns, ['ip', 'link', 'set', 'ns-d0', 'up']);
          await bed.exec(nh.netns, ['ip', 'link', 'set', 'ns-d0p', 'up']);
          const conf = join(await bed.tempDir('neutron'), 'dnsmasq-extra.conf');
          await writeFile(conf, 'port=5353\n'); // the peer's DNS probe asks port 5353
          const r = await bed.exec(
            nh.netns,
            [
              '/usr/bin/python3',
              peer,
              '--ports',
              String(n),
              '--reloads',
              String(rounds),
              '--config',
              conf,
            ],
            { timeoutMs: 900_000 },
          );
          const res = JSON.parse(r.stdout.slice(r.stdout.indexOf('{'))) as {
            reload: { served_s: number }[];
          };
          neutron = median(res.reload.map((x) => x.served_s * 1000));
          ctx.log(`n=${n}: neutron ${fmt(res.reload.map((x) => x.served_s * 1000))} ms`);
        } else {
          ctx.log(
            'Neutron peer not available (../shared/peers/neutron_dhcp.py and python3-neutron): not measured',
          );
        }
        const details = {
          hosts: n,
          rounds,
          addMs: add,
          addFloorMs: addFloor,
          removeMs: remove,
          removeFloorMs: removeFloor,
        };
        const common = { unit: 'ms', lowerIsBetter: true, details } as const;
        out.push(
          result({
            ...common,
            id: `dnsmasq.add-port-${n}`,
            description: `A port added to a network of ${n} hosts, timed until dnsmasq answers for it (a DNS query, not its log); median of ${rounds}. Calyx writes one file per port into dnsmasq's inotify-watched hosts directories: no reload at all. Baseline: the classic way with the same final state — one hosts file already rewritten, a bare SIGHUP. dnsmasq was never restarted.`,
            value: median(add),
            baseline: { name: 'bare SIGHUP', value: median(addFloor) },
            target: 1.1,
          }),
          result({
            ...common,
            id: `dnsmasq.remove-port-${n}`,
            description: `A port removed from a network of ${n} hosts (dnsmasq needs a reload to forget it): Calyx deletes its files and sends SIGHUP; timed until dnsmasq answers again; median of ${rounds}. Baseline: one hosts file already rewritten, a bare SIGHUP.`,
            value: median(remove),
            baseline: { name: 'bare SIGHUP', value: median(removeFloor) },
            target: 1.1,
          }),
        );
        if (neutron !== undefined) {
          out.push(
            result({
              ...common,
              id: `dnsmasq.add-port-${n}-vs-neutron`,
              description: `The same port addition against OpenStack Neutron's Dnsmasq driver (reload_allocations, ../shared/peers/neutron_dhcp.py) in the same run, until dnsmasq answers.`,
              value: median(add),
              baseline: { name: 'Neutron Dnsmasq driver', value: neutron },
              target: null,
            }),
          );
        }
      } finally {
        await bed.dispose();
      }
    }
    return out;
  },
};
