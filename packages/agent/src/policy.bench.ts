import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { median, result, type BenchmarkResult, type BenchmarkSuite } from '@calyx/bench';
import { PolicyCompiler, emptyView, type ResourceView } from '@calyx/calc';
import type {
  CommandResult,
  CommandRunner,
  RunOptions,
  RunningCommand,
  SpawnOptions,
} from '@calyx/dataplane';
import { IptablesProgrammer } from '@calyx/dataplane-iptables';
import { parseResource, type Endpoint, type SecurityGroupInput } from '@calyx/model';
import { Testbed, type TestHost } from '@calyx/testbed';

// The work of ../shared/peers/neutron_fw.py, in Calyx terms: N ports on this host in one
// group (SSH and HTTP in, everything out, everything from a remote group of 50 members on
// another host); one change = a port moving to a second group that also opens 443.

type MutableView = {
  -readonly [K in keyof ResourceView]: ResourceView[K] extends ReadonlyMap<infer A, infer B>
    ? Map<A, B>
    : ResourceView[K];
};

const GROUP_RULES: SecurityGroupInput['rules'] = [
  { direction: 'egress', ethertype: 'IPv4' },
  { direction: 'egress', ethertype: 'IPv6' },
  { direction: 'ingress', protocol: 'tcp', portRangeMin: 22, remoteIpPrefix: '0.0.0.0/0' },
  { direction: 'ingress', protocol: 'tcp', portRangeMin: 80, remoteIpPrefix: '0.0.0.0/0' },
  { direction: 'ingress', remoteGroupId: 'sg-members' },
];

const hex = (i: number) => i.toString(16).padStart(6, '0');
const ip = (i: number) => `10.${64 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`;
const mac = (i: number) =>
  `fa:16:3e:${[i >> 16, (i >> 8) & 255, i & 255].map((b) => b.toString(16).padStart(2, '0')).join(':')}`;

function endpoint(i: number, host: string, group: string): Endpoint {
  return parseResource('Endpoint', {
    // tap + the first 11 characters: unique early, like Neutron's device names.
    id: `${hex(i)}ab-cd-${i}`,
    host,
    networkId: 'net',
    mac: mac(i),
    fixedIps: [{ subnetId: 'sub', ipAddress: ip(i) }],
    securityGroupIds: [group],
  });
}

function buildView(n: number): MutableView {
  const v = emptyView() as MutableView;
  const sg = (id: string, rules: SecurityGroupInput['rules']) =>
    v.securityGroups.set(id, parseResource('SecurityGroup', { id, rules }));
  sg('sg', GROUP_RULES);
  sg('sg2', [
    ...(GROUP_RULES ?? []),
    { direction: 'ingress', protocol: 'tcp', portRangeMin: 443, remoteIpPrefix: '0.0.0.0/0' },
  ]);
  sg('sg-members', []);
  for (let j = 0; j < 50; j++) {
    const e = endpoint(900_000 + j, 'compute-2', 'sg-members');
    v.endpoints.set(e.id, e);
  }
  for (let i = 0; i < n; i++) {
    const e = endpoint(i, 'compute-1', 'sg');
    v.endpoints.set(e.id, e);
  }
  return v;
}

/** Passes commands through, keeping what was fed to iptables-restore and ipset restore. */
class CapturingRunner implements CommandRunner {
  captured: { argv: string[]; input: string }[] = [];
  constructor(private readonly inner: CommandRunner) {}
  run(argv: readonly string[], opts?: RunOptions): Promise<CommandResult> {
    const tool = argv[0] ?? '';
    if (/restore$/.test(tool) || (tool === 'ipset' && argv.includes('restore')))
      this.captured.push({ argv: [...argv], input: String(opts?.input ?? '') });
    return this.inner.run(argv, opts);
  }
  spawn(argv: readonly string[], opts?: SpawnOptions): RunningCommand {
    return this.inner.spawn(argv, opts);
  }
  take(): { argv: string[]; input: string }[] {
    const c = this.captured;
    this.captured = [];
    return c;
  }
}

/** The floor: the same restores with the raw tools, ipsets first when they create sets. */
async function replay(
  bed: Testbed,
  host: TestHost,
  calls: { argv: string[]; input: string }[],
): Promise<number> {
  const t0 = performance.now();
  const creates = calls.filter((c) => c.argv[0] === 'ipset' && /^create /m.test(c.input));
  const rest = calls.filter((c) => !creates.includes(c));
  for (const c of creates) await bed.exec(host.netns, c.argv, { input: c.input });
  await Promise.all(rest.map((c) => bed.exec(host.netns, c.argv, { input: c.input })));
  return performance.now() - t0;
}

async function ruleset(bed: Testbed, host: TestHost): Promise<string> {
  const strip = (s: string) =>
    s
      .split('\n')
      .filter((l) => !l.startsWith('#'))
      .join('\n');
  const [v4, v6, sets] = await Promise.all([
    bed.exec(host.netns, ['iptables-save']),
    bed.exec(host.netns, ['ip6tables-save']),
    bed.exec(host.netns, ['ipset', 'list', '-t']),
  ]);
  return (
    strip(v4.stdout) +
    strip(v6.stdout) +
    sets.stdout.replace(/initval \S+/g, '').replace(/^Size in memory.*$/gm, '')
  );
}

/** The Neutron peer script: in CALYX_PEERS_DIR when set, else in ../shared/peers beside the checkout. */
function neutronPeer(): string | undefined {
  const dir =
    process.env.CALYX_PEERS_DIR ?? resolve(import.meta.dirname, '../../../../shared/peers');
  const file = join(dir, 'neutron_fw.py');
  return existsSync(file) ? file : undefined;
}

interface NeutronRun {
  cold_apply_s: number;
  update1: { s: number }[];
  add1: { s: number }[];
}

async function runNeutron(bed: Testbed, peer: string, n: number): Promise<NeutronRun> {
  const host = await bed.addHost(`neutron-${n}`);
  // IPv4 only, as ../shared/peers/bench_neutron_fw.sh runs it.
  await bed.exec(host.netns, [
    'sysctl',
    '-q',
    '-w',
    'net.ipv6.conf.all.disable_ipv6=1',
    'net.ipv6.conf.default.disable_ipv6=1',
  ]);
  const updates = n >= 3000 ? 2 : 3;
  const r = await bed.exec(
    host.netns,
    [
      '/usr/bin/python3',
      peer,
      '--ports',
      String(n),
      '--members',
      '50',
      '--updates',
      String(updates),
      '--adds',
      '1',
      '--no-remove',
    ],
    { timeoutMs: 1_800_000 },
  );
  return JSON.parse(r.stdout.slice(r.stdout.indexOf('{'))) as NeutronRun;
}

export const suite: BenchmarkSuite = {
  id: 'security-groups',
  title:
    'security groups: cold programming and one-endpoint changes vs the raw restores of the same state, and vs Neutron',
  needsRoot: true,
  async run(ctx) {
    const sizes = ctx.quick ? [100] : [100, 1_000, 3_000, 10_000];
    const peerSizes = new Set(ctx.quick ? [100] : [100, 1_000, 3_000]);
    const peer = neutronPeer();
    const out: BenchmarkResult[] = [];
    for (const n of sizes) {
      const coldRuns = n >= 10_000 ? 3 : 5;
      // Small restores take a few ms in 4 ms steps here: more samples for a stable median.
      const steps = n >= 10_000 ? 12 : 30;
      const cold: number[] = [];
      const coldFloor: number[] = [];
      const add: number[] = [];
      const addFloor: number[] = [];
      const change: number[] = [];
      const changeFloor: number[] = [];
      const computeMs: number[] = [];
      let restoreLines = 0;
      let neutron: NeutronRun | undefined;
      for (let run = 0; run < coldRuns; run++) {
        const bed = await Testbed.create();
        try {
          const view = buildView(n);
          const mine = await bed.addHost('calyx');
          const raw = await bed.addHost('raw');
          const runner = new CapturingRunner(bed.runner);
          const compiler = new PolicyCompiler();
          const programmer = new IptablesProgrammer({ runner, netns: mine.netns });
          let t0 = performance.now();
          await programmer.apply(compiler.compute(view, 'compute-1'));
          cold.push(performance.now() - t0);
          coldFloor.push(await replay(bed, raw, runner.take()));
          if (run === 0) {
            // Incremental steps on the first cold state: add an endpoint, move one to sg2.
            for (let s = 0; s < steps; s++) {
              const e = endpoint(n + s, 'compute-1', 'sg');
              view.endpoints.set(e.id, e);
              t0 = performance.now();
              const d = compiler.compute(view, 'compute-1');
              computeMs.push(performance.now() - t0);
              await programmer.apply(d);
              add.push(performance.now() - t0);
              const calls = runner.take();
              restoreLines = calls.reduce((k, c) => k + c.input.split('\n').length - 1, 0);
              addFloor.push(await replay(bed, raw, calls));

              const k = endpoint(Math.floor(n / 2), 'compute-1', s % 2 === 0 ? 'sg2' : 'sg');
              view.endpoints.set(k.id, k);
              t0 = performance.now();
              await programmer.apply(compiler.compute(view, 'compute-1'));
              change.push(performance.now() - t0);
              changeFloor.push(await replay(bed, raw, runner.take()));
            }
            if ((await ruleset(bed, mine)) !== (await ruleset(bed, raw)))
              throw new Error(`n=${n}: calyx and the raw replay ended in different states`);
            if (peer && peerSizes.has(n) && existsSync('/usr/bin/python3')) {
              neutron = await runNeutron(bed, peer, n);
              ctx.log(
                `n=${n}: neutron cold ${neutron.cold_apply_s.toFixed(2)} s, one-port change ${neutron.update1.map((u) => u.s.toFixed(2)).join(', ')} s`,
              );
            }
          }
        } finally {
          await bed.dispose();
        }
        ctx.log(
          `n=${n} run ${run + 1}/${coldRuns}: cold ${cold.at(-1)!.toFixed(0)} ms (floor ${coldFloor.at(-1)!.toFixed(0)} ms)`,
        );
      }
      const fmt = (xs: number[]) => xs.map((x) => x.toFixed(1)).join(', ');
      ctx.log(
        `n=${n}: add ${fmt(add)} ms (floor ${fmt(addFloor)}); change ${fmt(change)} ms (floor ${fmt(changeFloor)})`,
      );
      if (peer === undefined && peerSizes.has(n))
        ctx.log(
          'Neutron peer (../shared/peers/neutron_fw.py, python3-neutron) not available: not measured',
        );
      const details = {
        endpoints: n,
        coldRuns,
        steps,
        coldMs: cold.map(Math.round),
        coldFloorMs: coldFloor.map(Math.round),
        addMs: add.map((x) => +x.toFixed(1)),
        addFloorMs: addFloor.map((x) => +x.toFixed(1)),
        changeMs: change.map((x) => +x.toFixed(1)),
        changeFloorMs: changeFloor.map((x) => +x.toFixed(1)),
        computeMsMedian: +median(computeMs).toFixed(2),
        restoreLinesPerAdd: restoreLines,
      };
      const common = { unit: 'ms', lowerIsBetter: true, details } as const;
      out.push(
        result({
          ...common,
          id: `security-groups.cold-${n}`,
          description: `${n} local endpoints (plus 50 remote-group members elsewhere) programmed from nothing: policy compiled, existing state read (iptables-save ×2, ipset save), ipsets and both families' tables written; median of ${coldRuns}. Baseline: the identical final state with the raw tools — the same ipset restore and iptables-restore/ip6tables-restore inputs replayed in a fresh namespace.`,
          value: median(cold),
          baseline: { name: 'raw ipset + iptables-restore', value: median(coldFloor) },
          target: 1.2,
        }),
        result({
          ...common,
          id: `security-groups.add-endpoint-${n}`,
          description: `One endpoint added while ${n} are programmed: compile + apply (its two chains, one dispatch leaf per direction, its address in the anti-spoofing set); median of ${steps}. Baseline: the same incremental restores replayed with the raw tools on an identical namespace.`,
          value: median(add),
          baseline: { name: 'same incremental restore, raw', value: median(addFloor) },
          target: 1.2,
        }),
        result({
          ...common,
          id: `security-groups.change-endpoint-${n}`,
          description: `One endpoint moved to another security group (which opens one more port) while ${n} are programmed; median of ${steps}. Baseline: the same incremental restores replayed with the raw tools.`,
          value: median(change),
          baseline: { name: 'same incremental restore, raw', value: median(changeFloor) },
          target: 1.2,
        }),
      );
      if (neutron) {
        const peerDetails = {
          ...details,
          neutronColdS: neutron.cold_apply_s,
          neutronUpdateS: neutron.update1.map((u) => u.s),
          neutronAddS: neutron.add1.map((u) => u.s),
        };
        out.push(
          result({
            unit: 'ms',
            lowerIsBetter: true,
            details: peerDetails,
            id: `security-groups.change-endpoint-${n}-vs-neutron`,
            description: `The same one-port change (the port moves to a group with one more rule) at ${n} ports against OpenStack Neutron's IptablesFirewallDriver (../shared/peers/neutron_fw.py, IPv4 only) in the same run. Target: at least 100× faster at 1,000 ports, i.e. a ratio ≤ 0.01.`,
            value: median(change),
            baseline: {
              name: 'Neutron IptablesFirewallDriver',
              value: median(neutron.update1.map((u) => u.s * 1000)),
            },
            target: n === 1_000 ? 0.01 : null,
          }),
          result({
            unit: 'ms',
            lowerIsBetter: true,
            details: peerDetails,
            id: `security-groups.cold-${n}-vs-neutron`,
            description: `${n} ports from cold against Neutron's IptablesFirewallDriver (prepare_port_filter for every port in one defer_apply) in the same run.`,
            value: median(cold),
            baseline: {
              name: 'Neutron IptablesFirewallDriver',
              value: neutron.cold_apply_s * 1000,
            },
            target: null,
          }),
        );
      }
    }
    return out;
  },
};
