import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  parseResource,
  type InputOf,
  type Kind,
  type ResourceOf,
  type SecurityGroupRuleInput,
} from '@calyx/model';
import type { TrackedMap } from './index.js';
import {
  ACCEPT_MARK,
  PolicyCompiler,
  chainNames,
  DispatchTree,
  dispatchChains,
  emptyView,
  ruleMatch,
  type DesiredFilter,
  type ResourceView,
} from './index.js';

type Mutable = {
  -readonly [K in keyof ResourceView]: ResourceView[K] extends ReadonlyMap<infer A, infer B>
    ? Map<A, B>
    : ResourceView[K];
};
const r = <K extends Kind>(kind: K, input: InputOf<K>): ResourceOf<K> => parseResource(kind, input);
const rule = (input: Partial<SecurityGroupRuleInput>) =>
  r('SecurityGroup', { id: 'g', rules: [{ direction: 'ingress', ...input }] }).rules[0]!;

describe('ruleMatch', () => {
  it.each([
    [{ protocol: 'tcp', portRangeMin: 22 }, 4, '-p tcp -m tcp --dport 22'],
    [
      { protocol: 'udp', portRangeMin: 1000, portRangeMax: 2000 },
      4,
      '-p udp -m udp --dport 1000:2000',
    ],
    [
      { protocol: 'udplite', portRangeMin: 5, portRangeMax: 7 },
      4,
      '-p udplite -m multiport --dports 5:7',
    ],
    [{ protocol: 'icmp', icmpType: 8, icmpCode: 0 }, 4, '-p icmp -m icmp --icmp-type 8/0'],
    [{ protocol: 'icmp' }, 4, '-p icmp'],
    [
      { ethertype: 'IPv6', protocol: 'icmp', icmpType: 128 },
      6,
      '-p ipv6-icmp -m icmp6 --icmpv6-type 128',
    ],
    [{ protocol: 47 }, 4, '-p gre'],
    [{ protocol: 253 }, 4, '-p 253'],
    [{ remoteIpPrefix: '192.0.2.0/24', protocol: 'tcp' }, 4, '-s 192.0.2.0/24 -p tcp'],
    [{ direction: 'egress', remoteIpPrefix: '192.0.2.0/24' }, 4, '-d 192.0.2.0/24'],
    [{}, 4, ''],
    [{ remoteGroupId: 'web' }, 4, `-m set --match-set ${chainNames.groupSet(4, 'web')} src`],
    [
      { direction: 'egress', ethertype: 'IPv6', remoteGroupId: 'web' },
      6,
      `-m set --match-set ${chainNames.groupSet(6, 'web')} dst`,
    ],
  ] as const)('%j (IPv%s) → %s', (input, family, expected) => {
    expect(ruleMatch(rule(input as never), family)).toBe(expected);
  });

  it('gives nothing for the other family', () => {
    expect(ruleMatch(rule({ protocol: 'tcp' }), 6)).toBeUndefined();
    expect(ruleMatch(rule({ ethertype: 'IPv6' }), 4)).toBeUndefined();
  });
});

/** Follows the dispatch tree for an interface the way the kernel would; returns the target chain or DROP. */
function dispatch(
  chains: ReadonlyMap<string, readonly string[]>,
  root: string,
  iface: string,
): string {
  let chain = root;
  for (let hops = 0; hops < 32; hops++) {
    const rules = chains.get(chain);
    if (!rules) throw new Error(`missing chain ${chain}`);
    let next: string | undefined;
    for (const rl of rules) {
      const m = /^-[io] (\S+) -g (\S+)$/.exec(rl);
      if (!m) {
        if (rl.endsWith('-j DROP')) return 'DROP';
        continue;
      }
      const pat = m[1]!;
      const hit = pat.endsWith('+') ? iface.startsWith(pat.slice(0, -1)) : iface === pat;
      if (hit) {
        next = m[2]!;
        break;
      }
    }
    if (!next) throw new Error(`fell off ${chain}`);
    if (!chains.has(next)) return next;
    chain = next;
  }
  throw new Error('loop');
}

describe('dispatchChains', () => {
  it('routes every interface to its chain, unknown ones to DROP, with bounded chains', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.stringMatching(/^[0-9a-f-]{1,11}$/), { maxLength: 300 }),
        fc.integer({ min: 1, max: 40 }),
        fc.stringMatching(/^[0-9a-f-]{1,11}$/),
        (suffixes, leaf, unknown) => {
          const names = suffixes.map((s) => `tap${s}`);
          const chains = dispatchChains(
            'calyx-from-wl',
            names,
            'tap',
            '-i',
            (n) => `fw-${n}`,
            leaf,
          );
          for (const n of names) expect(dispatch(chains, 'calyx-from-wl', n)).toBe(`fw-${n}`);
          if (!names.includes(`tap${unknown}`))
            expect(dispatch(chains, 'calyx-from-wl', `tap${unknown}`)).toBe('DROP');
          for (const [name, rules] of chains) {
            // A leaf holds at most `leaf` interfaces; an inner chain one rule per next character.
            expect(rules.length).toBeLessThanOrEqual(Math.max(leaf, 17) + 1);
            expect(name.length).toBeLessThanOrEqual(28);
          }
        },
      ),
      { numRuns: 200 },
    );
  });
});

function hostView(n = 3): Mutable {
  const v = emptyView() as Mutable;
  v.subnets.set('s4', r('Subnet', { id: 's4', networkId: 'net', cidr: '10.65.0.0/16' }));
  v.subnets.set('s6', r('Subnet', { id: 's6', networkId: 'net', cidr: '2001:db8:65::/64' }));
  v.securityGroups.set(
    'web',
    r('SecurityGroup', {
      id: 'web',
      rules: [
        { direction: 'ingress', protocol: 'tcp', portRangeMin: 80 },
        { direction: 'ingress', ethertype: 'IPv6', protocol: 'tcp', portRangeMin: 80 },
        { direction: 'ingress', protocol: 'tcp', portRangeMin: 5432, remoteGroupId: 'db' },
        { direction: 'egress' },
        { direction: 'egress', ethertype: 'IPv6' },
      ],
    }),
  );
  v.securityGroups.set(
    'db',
    r('SecurityGroup', {
      id: 'db',
      rules: [{ direction: 'egress', remoteIpPrefix: '10.0.0.0/8' }],
    }),
  );
  for (let i = 0; i < n; i++) addEndpoint(v, i, 'compute-1');
  return v;
}

function addEndpoint(
  v: Mutable,
  i: number,
  host: string,
  extra: Partial<InputOf<'Endpoint'>> = {},
): ResourceOf<'Endpoint'> {
  const id = `e${String(i).padStart(5, '0')}-0000-0000`;
  const e = r('Endpoint', {
    id,
    host,
    networkId: 'net',
    mac: `fa:16:3e:00:${((i >> 8) & 0xff).toString(16).padStart(2, '0')}:${(i & 0xff).toString(16).padStart(2, '0')}`,
    fixedIps: [{ subnetId: 's4', ipAddress: `10.65.${((i + 1) >> 8) & 0xff}.${(i + 1) & 0xff}` }],
    securityGroupIds: ['web'],
    ...extra,
  });
  v.endpoints.set(id, e);
  return e;
}

const filterChains = (d: DesiredFilter, f: 4 | 6) => (f === 4 ? d.v4 : d.v6).filter.chains;

/** The compiler's output is live; tests comparing two computations copy it first. */
function snapshot(d: DesiredFilter): DesiredFilter {
  const fam = (x: DesiredFilter['v4']) => ({
    filter: { chains: new Map(x.filter.chains), hooks: new Map(x.filter.hooks) },
    raw: { chains: new Map(x.raw.chains), hooks: new Map(x.raw.hooks) },
    nat: { chains: new Map(x.nat.chains), hooks: new Map(x.nat.hooks) },
  });
  return { v4: fam(d.v4), v6: fam(d.v6), ipsets: new Map(d.ipsets) };
}

/** Order-free content of a computation, to compare an incremental compiler with a fresh one. */
function canonical(d: DesiredFilter): unknown {
  const fam = (x: DesiredFilter['v4']) =>
    Object.fromEntries(
      (['filter', 'raw', 'nat'] as const).map((t) => [
        t,
        {
          chains: [...x[t].chains].sort(([a], [b]) => (a < b ? -1 : 1)),
          hooks: [...x[t].hooks].sort(),
        },
      ]),
    );
  return {
    v4: fam(d.v4),
    v6: fam(d.v6),
    ipsets: [...d.ipsets]
      .map(([n, s]) => [n, s.family, s.type, [...s.members].sort()])
      .sort(([a], [b]) => ((a as string) < (b as string) ? -1 : 1)),
  };
}

describe('PolicyCompiler', () => {
  it('compiles a host: dispatch, endpoint and group chains, hooks, anti-spoofing sets', () => {
    const v = hostView(1);
    const dual = addEndpoint(v, 7, 'compute-1', {
      fixedIps: [
        { subnetId: 's4', ipAddress: '10.65.0.50' },
        { subnetId: 's6', ipAddress: '2001:db8:65::50' },
      ],
      allowedAddressPairs: [{ ipAddress: '10.65.9.0/24', macAddress: 'fa:16:3e:99:99:99' }],
    });
    addEndpoint(v, 8, 'compute-2', { securityGroupIds: ['db'] });
    const d = new PolicyCompiler().compute(v, 'compute-1');
    const c4 = filterChains(d, 4);
    const c6 = filterChains(d, 6);
    const tap0 = 'tape00000-0000';
    expect(c4.get('calyx-from-wl')).toEqual([
      `-i ${tap0} -g calyx-fw-${tap0}`,
      `-i ${dual.interfaceName} -g calyx-fw-${dual.interfaceName}`,
      '-m comment --comment "unknown endpoint interface" -j DROP',
    ]);
    // The IPv4-only endpoint has no IPv6 chains: its IPv6 traffic is dropped by dispatch.
    expect(c6.get('calyx-to-wl')).toEqual([
      `-o ${dual.interfaceName} -g calyx-tw-${dual.interfaceName}`,
      '-m comment --comment "unknown endpoint interface" -j DROP',
    ]);
    expect(c6.has(`calyx-tw-${tap0}`)).toBe(false);
    expect(c4.get(`calyx-tw-${tap0}`)).toEqual([
      `-j MARK --set-xmark 0x0/${ACCEPT_MARK}`,
      `-j ${chainNames.groupIn('web')}`,
      `-m mark --mark ${ACCEPT_MARK}/${ACCEPT_MARK} -j RETURN`,
      '-m comment --comment "no security group allowed it" -j DROP',
    ]);
    expect(c4.get(`calyx-fw-${tap0}`)![0]).toBe('-m mac ! --mac-source fa:16:3e:00:00:00 -j DROP');
    // Two MACs (own and the address pair's): either passes.
    expect(c4.get(`calyx-fw-${dual.interfaceName}`)!.slice(0, 4)).toEqual([
      '-j MARK --set-xmark 0x0/0x20000',
      '-m mac --mac-source fa:16:3e:00:00:07 -j MARK --set-xmark 0x20000/0x20000',
      '-m mac --mac-source fa:16:3e:99:99:99 -j MARK --set-xmark 0x20000/0x20000',
      '-m mark ! --mark 0x20000/0x20000 -j DROP',
    ]);
    expect(c4.get(chainNames.groupIn('web'))).toEqual([
      `-p tcp -m tcp --dport 80 -j MARK --set-xmark ${ACCEPT_MARK}/${ACCEPT_MARK}`,
      `-m mark --mark ${ACCEPT_MARK}/${ACCEPT_MARK} -j RETURN`,
      `-p tcp -m tcp --dport 5432 -m set --match-set ${chainNames.groupSet(4, 'db')} src -j MARK --set-xmark ${ACCEPT_MARK}/${ACCEPT_MARK}`,
      `-m mark --mark ${ACCEPT_MARK}/${ACCEPT_MARK} -j RETURN`,
    ]);
    expect(d.v4.filter.hooks).toEqual(
      new Map([
        ['FORWARD', '-j calyx-FORWARD'],
        ['INPUT', '-j calyx-INPUT'],
      ]),
    );
    expect(d.v4.raw.hooks.get('PREROUTING')).toBe('-j calyx-PREROUTING');
    const sources = d.ipsets.get('calyx-4-sources')!;
    expect({ ...sources, members: [...sources.members].sort() }).toEqual({
      family: 4,
      type: 'hash:net,iface',
      members: [
        `10.65.0.1/32,${tap0}`,
        `10.65.0.50/32,${dual.interfaceName}`,
        `10.65.9.0/24,${dual.interfaceName}`,
      ],
    });
    expect(d.ipsets.get('calyx-6-sources')!.members).toEqual([
      `2001:db8:65::50/128,${dual.interfaceName}`,
    ]);
    // The remote group's members live on another host; its set exists in both families.
    expect(d.ipsets.get(chainNames.groupSet(4, 'db'))!.members).toEqual(['10.65.0.9/32']);
    expect(d.ipsets.get(chainNames.groupSet(6, 'db'))!.members).toEqual([]);
    // No NAT-outgoing pool: an empty chain and no pool sets.
    expect(d.v4.nat.chains.get('calyx-POSTROUTING')).toEqual([]);
    expect(d.ipsets.has('calyx-4-masq-pools')).toBe(false);
  });

  it('drops everything of an admin-down endpoint and lets a port without security through', () => {
    const v = hostView(0);
    const down = addEndpoint(v, 1, 'compute-1', { adminStateUp: false });
    const open = addEndpoint(v, 2, 'compute-1', { portSecurityEnabled: false });
    const d = new PolicyCompiler().compute(v, 'compute-1');
    const c4 = filterChains(d, 4);
    expect(c4.get(`calyx-fw-${down.interfaceName}`)).toEqual([
      '-m comment --comment "admin state down" -j DROP',
    ]);
    expect(c4.get(`calyx-tw-${open.interfaceName}`)).toEqual([
      `-j MARK --set-xmark ${ACCEPT_MARK}/${ACCEPT_MARK}`,
      '-j RETURN',
    ]);
    expect([...d.ipsets.get('calyx-4-sources')!.members].sort()).toEqual([
      `0.0.0.0/1,${open.interfaceName}`,
      `128.0.0.0/1,${open.interfaceName}`,
    ]);
  });

  it('treats a missing security group as allowing nothing', () => {
    const v = hostView(0);
    addEndpoint(v, 1, 'compute-1', { securityGroupIds: ['nope'] });
    const d = new PolicyCompiler().compute(v, 'compute-1');
    expect(filterChains(d, 4).get(chainNames.groupIn('nope'))).toEqual([]);
  });

  it('masquerades NAT-outgoing pools to destinations outside every pool', () => {
    const v = hostView(1);
    v.ipPools.set('p', r('IpPool', { name: 'p', cidr: '10.65.0.0/16', natOutgoing: true }));
    v.ipPools.set('q', r('IpPool', { name: 'q', cidr: '10.66.0.0/16' }));
    const d = new PolicyCompiler().compute(v, 'compute-1');
    expect(d.v4.nat.chains.get('calyx-POSTROUTING')).toEqual([
      '-m set --match-set calyx-4-masq-pools src -m set ! --match-set calyx-4-all-pools dst -j MASQUERADE',
    ]);
    expect(d.ipsets.get('calyx-4-all-pools')!.members).toEqual(['10.65.0.0/16', '10.66.0.0/16']);
    expect(d.v6.nat.chains.get('calyx-POSTROUTING')).toEqual([]);
  });

  it('limits VM → host traffic to DHCP, DNS, ping, NDP and configured services', () => {
    const v = hostView(1);
    const d = new PolicyCompiler({
      hostServices: [{ protocol: 'tcp', port: 80, destination: '169.254.169.254' }],
    }).compute(v, 'compute-1');
    const v4 = filterChains(d, 4).get('calyx-wl-to-host')!;
    expect(v4).toContain('-p udp -m udp --sport 68 --dport 67 -j ACCEPT');
    expect(v4).toContain('-d 169.254.169.254/32 -p tcp -m tcp --dport 80 -j ACCEPT');
    expect(v4.at(-1)).toMatch(/-j DROP$/);
    const v6 = filterChains(d, 6).get('calyx-wl-to-host')!;
    expect(v6).toContain('-p ipv6-icmp -m icmp6 --icmpv6-type 135 -j ACCEPT');
    expect(v6.join('\n')).not.toContain('169.254');
  });

  it('keeps the identity of everything unchanged, so one endpoint changed touches a few chains', () => {
    const v = hostView(2000);
    const compiler = new PolicyCompiler();
    const before = snapshot(compiler.compute(v, 'compute-1'));
    const again = snapshot(compiler.compute(v, 'compute-1'));
    const changed = (a: DesiredFilter, b: DesiredFilter) => {
      const out: string[] = [];
      for (const f of [4, 6] as const)
        for (const t of ['filter', 'raw', 'nat'] as const) {
          const x = (f === 4 ? a.v4 : a.v6)[t].chains;
          const y = (f === 4 ? b.v4 : b.v6)[t].chains;
          for (const [name, rules] of y) if (x.get(name) !== rules) out.push(`${f}/${name}`);
          for (const name of x.keys()) if (!y.has(name)) out.push(`${f}/-${name}`);
        }
      for (const [name, s] of b.ipsets)
        if (a.ipsets.get(name)?.members !== s.members) out.push(name);
      return out.sort();
    };
    expect(changed(before, again)).toEqual([]);

    const added = addEndpoint(v, 5000, 'compute-1');
    const after = snapshot(compiler.compute(v, 'compute-1'));
    const diff = changed(again, after);
    expect(diff).toContain(`4/calyx-fw-${added.interfaceName}`);
    expect(diff).toContain(`4/calyx-tw-${added.interfaceName}`);
    expect(diff).toContain('calyx-4-sources');
    // Two endpoint chains and one leaf per dispatch tree (or the few chains of a split).
    expect(diff.length).toBeLessThanOrEqual(10);

    // A remote group member elsewhere changes that set only.
    addEndpoint(v, 9000, 'compute-2', { securityGroupIds: ['db'] });
    expect(changed(after, snapshot(compiler.compute(v, 'compute-1')))).toEqual([
      chainNames.groupSet(4, 'db'),
    ]);

    // Changing a group rewrites its chains, not the endpoints'.
    v.securityGroups.set(
      'web',
      r('SecurityGroup', { id: 'web', rules: [{ direction: 'ingress', protocol: 'udp' }] }),
    );
    const last = snapshot(compiler.compute(v, 'compute-1'));
    const groupDiff = changed(after, last);
    expect(groupDiff).toEqual(
      expect.arrayContaining([`4/${chainNames.groupIn('web')}`, `4/${chainNames.groupOut('web')}`]),
    );
    expect(groupDiff.some((c) => c.includes('calyx-tw-') || c.includes('calyx-fw-'))).toBe(false);
  });
});

/** The tree as first written: recursive, from scratch. The incremental tree must equal it. */
function referenceDispatch(names: readonly string[], leaf: number): Map<string, string[]> {
  const root = 'calyx-from-wl';
  const out = new Map<string, string[]>();
  const build = (chain: string, group: string[], depth: number): void => {
    const rules: string[] = [];
    if (group.length <= leaf || depth >= 15) {
      for (const n of group) rules.push(`-i ${n} -g fw-${n}`);
    } else {
      const byChar = new Map<string, string[]>();
      for (const n of group) {
        const c = n.slice(0, depth + 1);
        byChar.set(c, [...(byChar.get(c) ?? []), n]);
      }
      for (const [p, list] of [...byChar].sort(([x], [y]) => (x < y ? -1 : 1))) {
        const exact = list.indexOf(p);
        if (exact >= 0) {
          rules.push(`-i ${p} -g fw-${p}`);
          list.splice(exact, 1);
          if (list.length === 0) continue;
        }
        if (list.length === 1) {
          rules.push(`-i ${list[0]} -g fw-${list[0]}`);
          continue;
        }
        const child = `${root}-${p.slice(3)}`;
        rules.push(`-i ${p}+ -g ${child}`);
        build(child, list, depth + 1);
      }
    }
    rules.push('-m comment --comment "unknown endpoint interface" -j DROP');
    out.set(chain, rules);
  };
  build(root, [...names].sort(), 3);
  return out;
}

describe('DispatchTree', () => {
  it('builds the same chains as the reference algorithm', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.stringMatching(/^tap[0-9a-c]{1,8}$/), { maxLength: 300 }),
        fc.integer({ min: 1, max: 8 }),
        (names, leaf) => {
          const got = dispatchChains('calyx-from-wl', names, 'tap', '-i', (n) => `fw-${n}`, leaf);
          expect(new Map([...got].sort())).toEqual(
            new Map([...referenceDispatch(names, leaf)].sort()),
          );
        },
      ),
      { numRuns: 300 },
    );
  });

  it('kept up to date name by name equals the tree built from scratch', () => {
    const name = fc.stringMatching(/^tap[0-9a-c]{1,6}$/);
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.boolean(), name), { maxLength: 200 }),
        fc.integer({ min: 1, max: 6 }),
        (ops, leaf) => {
          const live = new Map<string, readonly string[]>();
          const target = (n: string) => `fw-${n}`;
          const tree = new DispatchTree('calyx-from-wl', 'tap', '-i', target, leaf, live);
          const names = new Set<string>();
          ops.forEach(([add, n], i) => {
            if (add) {
              tree.add(n);
              names.add(n);
            } else {
              tree.delete(n);
              names.delete(n);
            }
            if (i % 7 === 0 || i === ops.length - 1) {
              tree.flush();
              const fresh = dispatchChains('calyx-from-wl', [...names], 'tap', '-i', target, leaf);
              expect(new Map([...live].sort())).toEqual(new Map([...fresh].sort()));
              for (const x of names) expect(dispatch(live, 'calyx-from-wl', x)).toBe(`fw-${x}`);
            }
          });
        },
      ),
      { numRuns: 300 },
    );
  });

  it('re-emits only the chains on the changed name’s path', () => {
    const live = new Map<string, readonly string[]>();
    const tree = new DispatchTree('calyx-to-wl', 'tap', '-o', (n) => `tw-${n}`, 32, live);
    for (let i = 0; i < 10_000; i++) tree.add(`tap${i.toString(16).padStart(6, '0')}ab-cd`);
    tree.flush();
    const before = new Map(live);
    tree.add('tap00abcdab-cd');
    tree.flush();
    const rewritten = [...live].filter(([n, rules]) => before.get(n) !== rules).map(([n]) => n);
    expect(rewritten.length).toBeGreaterThan(0);
    expect(rewritten.length).toBeLessThanOrEqual(3);
    expect(live.size - before.size).toBeLessThanOrEqual(2);
  });
});

describe('PolicyCompiler (incremental)', () => {
  it('after any sequence of changes equals a fresh compiler on the same view', () => {
    const groups = ['web', 'db', 'nope'];
    const op = fc.oneof(
      fc.record({
        kind: fc.constant('put' as const),
        i: fc.integer({ min: 0, max: 40 }),
        host: fc.constantFrom('compute-1', 'compute-2'),
        groups: fc.subarray(groups),
        admin: fc.boolean(),
        security: fc.boolean(),
        v6: fc.boolean(),
        pair: fc.boolean(),
      }),
      fc.record({ kind: fc.constant('del' as const), i: fc.integer({ min: 0, max: 40 }) }),
      fc.record({
        kind: fc.constant('group' as const),
        id: fc.constantFrom(...groups),
        port: fc.integer({ min: 1, max: 3 }),
        remote: fc.option(fc.constantFrom(...groups), { nil: undefined }),
      }),
      fc.record({ kind: fc.constant('nat' as const), on: fc.boolean() }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
        const v = hostView(0);
        const compiler = new PolicyCompiler({ dispatchLeafSize: 4 });
        const seen = new Map<string, { generation: number; chains: Map<string, unknown> }>();
        let seenSets = new Map<string, readonly string[]>();
        ops.forEach((o, step) => {
          if (o.kind === 'put') {
            addEndpoint(v, o.i, o.host, {
              securityGroupIds: o.groups,
              adminStateUp: o.admin,
              portSecurityEnabled: o.security,
              fixedIps: [
                { subnetId: 's4', ipAddress: `10.65.0.${o.i + 1}` },
                ...(o.v6 ? [{ subnetId: 's6', ipAddress: `2001:db8:65::${o.i + 1}` }] : []),
              ],
              allowedAddressPairs: o.pair
                ? [{ ipAddress: '10.65.200.0/24', macAddress: 'fa:16:3e:aa:aa:aa' }]
                : [],
            });
          } else if (o.kind === 'del') {
            v.endpoints.delete(`e${String(o.i).padStart(5, '0')}-0000-0000`);
          } else if (o.kind === 'group') {
            v.securityGroups.set(
              o.id,
              r('SecurityGroup', {
                id: o.id,
                rules: [
                  { direction: 'ingress', protocol: 'tcp', portRangeMin: o.port },
                  ...(o.remote ? [{ direction: 'ingress' as const, remoteGroupId: o.remote }] : []),
                ],
              }),
            );
          } else {
            v.ipPools.set('p', r('IpPool', { name: 'p', cidr: '10.65.0.0/16', natOutgoing: o.on }));
          }
          const out = compiler.compute(v, 'compute-1');
          // What the output says changed (chain log, ipset deltas) is what changed.
          for (const [f, fam] of [
            ['v4', out.v4],
            ['v6', out.v6],
          ] as const)
            for (const t of ['filter', 'raw', 'nat'] as const) {
              const chains = fam[t].chains as TrackedMap<string, readonly string[]>;
              const key = `${f}/${t}`;
              const prev = seen.get(key);
              if (prev) {
                const logged = new Set(chains.changedSince(prev.generation));
                for (const [n, rules] of chains)
                  if (prev.chains.get(n) !== rules) expect(logged).toContain(n);
                for (const n of prev.chains.keys()) if (!chains.has(n)) expect(logged).toContain(n);
              }
              seen.set(key, { generation: chains.generation, chains: new Map(chains) });
            }
          for (const [name, set] of out.ipsets) {
            if (!set.delta || set.delta.base !== seenSets.get(name)) continue;
            const expected = new Set(set.delta.base);
            for (const m of set.delta.removed) expected.delete(m);
            for (const m of set.delta.added) expected.add(m);
            expect([...expected].sort()).toEqual([...set.members].sort());
          }
          seenSets = new Map([...out.ipsets].map(([n, x]) => [n, x.members]));
          if (step % 5 === 0 || step === ops.length - 1)
            expect(canonical(out)).toEqual(
              canonical(new PolicyCompiler({ dispatchLeafSize: 4 }).compute(v, 'compute-1')),
            );
        });
      }),
      { numRuns: 150 },
    );
  });
});
