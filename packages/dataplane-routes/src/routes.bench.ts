import { median, result, type BenchmarkResult, type BenchmarkSuite } from '@calyx/bench';
import { Testbed } from '@calyx/testbed';
import { RoutesProgrammer, tapSysctls, type RoutesDesired } from './index.js';

function desiredFor(n: number): RoutesDesired {
  const endpoints = Array.from({ length: n }, (_, i) => ({
    interfaceName: `tap${String(i).padStart(6, '0')}`,
    mac: `fa:16:3e:${((i >> 16) & 0xff).toString(16).padStart(2, '0')}:${((i >> 8) & 0xff).toString(16).padStart(2, '0')}:${(i & 0xff).toString(16).padStart(2, '0')}`,
    addresses: [`10.${64 + (i >> 16)}.${(i >> 8) & 0xff}.${i & 0xff}`],
  }));
  return { endpoints, gateways: ['10.64.0.1'] };
}

/** The same final state with the raw tools: one `ip -batch` and one `sysctl -p`. */
function rawInputs(d: RoutesDesired): { batch: string; sysctl: string } {
  const lines = [
    'link add calyx-gw type veth peer name calyx-gwp',
    'link set calyx-gwp up',
    'link set calyx-gw up',
    'address add 10.64.0.1/32 dev calyx-gw',
  ];
  for (const e of d.endpoints)
    for (const a of e.addresses)
      lines.push(`route replace ${a}/32 dev ${e.interfaceName} scope link proto 80`);
  for (const e of d.endpoints)
    for (const a of e.addresses)
      lines.push(`neigh replace ${a} lladdr ${e.mac} dev ${e.interfaceName} nud permanent`);
  const sysctl = [
    'net/ipv4/ip_forward=1',
    'net/ipv6/conf/all/forwarding=1',
    ...d.endpoints.flatMap((e) => tapSysctls(e.interfaceName, false)),
  ];
  return {
    batch: lines.join('\n') + '\n',
    sysctl: sysctl.map((s) => s.replace('=', ' = ')).join('\n') + '\n',
  };
}

async function freshHost(bed: Testbed, name: string, d: RoutesDesired) {
  const host = await bed.addHost(name);
  const taps = d.endpoints.map((e) => `tuntap add mode tap name ${e.interfaceName}`);
  const up = d.endpoints.map((e) => `link set ${e.interfaceName} up`);
  await bed.exec(host.netns, ['ip', '-batch', '-'], { input: [...taps, ...up].join('\n') + '\n' });
  return host;
}

export const suite: BenchmarkSuite = {
  id: 'dataplane-routes',
  title: 'route programming for N local endpoints vs ip -batch + sysctl of the same final state',
  needsRoot: true,
  async run(ctx) {
    const sizes = ctx.quick ? [100] : [1_000, 10_000];
    const out: BenchmarkResult[] = [];
    for (const n of sizes) {
      const runs = n >= 10_000 ? 3 : 5;
      const d = desiredFor(n);
      const raw = rawInputs(d);
      const calyxMs: number[] = [];
      const rawMs: number[] = [];
      for (let r = 0; r < runs; r++) {
        const bed = await Testbed.create();
        try {
          // Calyx, cold: reads the (empty) state, writes sysctls, one batch.
          const h1 = await freshHost(bed, 'calyx', d);
          let t0 = performance.now();
          await new RoutesProgrammer({ runner: bed.runner, netns: h1.netns, ipv6: false }).apply(d);
          calyxMs.push(performance.now() - t0);
          // The floor: the same final state with the raw tools.
          const h2 = await freshHost(bed, 'raw', d);
          t0 = performance.now();
          await bed.exec(h2.netns, ['sysctl', '-q', '-p', '-'], { input: raw.sysctl });
          await bed.exec(h2.netns, ['ip', '-batch', '-'], { input: raw.batch });
          rawMs.push(performance.now() - t0);
          const count = (await bed.exec(h1.netns, ['ip', '-json', 'route', 'show', 'proto', '80']))
            .stdout;
          if ((JSON.parse(count) as unknown[]).length !== n)
            throw new Error('calyx programmed the wrong number of routes');
        } finally {
          await bed.dispose();
        }
        ctx.log(
          `n=${n} run ${r + 1}/${runs}: calyx ${calyxMs.at(-1)!.toFixed(0)} ms, raw ${rawMs.at(-1)!.toFixed(0)} ms`,
        );
      }
      out.push(
        result({
          id: `dataplane-routes.cold-${n}`,
          description: `Programming ${n} local endpoints from cold (host route, static neighbour, 3 tap sysctls each, gateway address), median of ${runs}; baseline: one \`sysctl -p\` and one \`ip -batch\` of the identical final state in a fresh namespace.`,
          unit: 'ms',
          lowerIsBetter: true,
          value: median(calyxMs),
          baseline: { name: 'ip -batch + sysctl -p', value: median(rawMs) },
          target: 1.2,
          details: { n, runs, calyxMs: calyxMs.map(Math.round), rawMs: rawMs.map(Math.round) },
        }),
      );
    }
    return out;
  },
};
