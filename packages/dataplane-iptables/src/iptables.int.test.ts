import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeIntegration } from '@calyx/core/testing';
import { InvalidNameError } from '@calyx/dataplane';
import { Testbed, type TestHost } from '@calyx/testbed';
import { IptablesProgrammer, type IptablesDesired, type TableSpec } from './index.js';

/**
 * The same rules, and no counter went back (a rewritten rule starts again from zero); a stray
 * packet in the namespace may still add to them meanwhile.
 */
function expectUntouched(before: string, after: string): void {
  const withoutCounters = (t: string) => t.replace(/^\[\d+:\d+\] /gm, '');
  expect(withoutCounters(after)).toBe(withoutCounters(before));
  const counters = (t: string) =>
    [...t.matchAll(/^\[(\d+):(\d+)\] /gm)].map((m) => [Number(m[1]), Number(m[2])]);
  const was = counters(before);
  expect(was.length).toBeGreaterThan(0);
  counters(after).forEach(([packets, bytes], i) => {
    expect(packets).toBeGreaterThanOrEqual(was[i]![0]!);
    expect(bytes).toBeGreaterThanOrEqual(was[i]![1]!);
  });
}

const table = (
  chains: Record<string, string[]>,
  hooks: Record<string, string> = {},
): TableSpec => ({
  chains: new Map(Object.entries(chains)),
  hooks: new Map(Object.entries(hooks)),
});

function desired(
  opts: { members?: string[]; extraChain?: boolean; inputRule?: string } = {},
): IptablesDesired {
  const input = [
    '-i lo -p icmp -m comment --comment "loopback ping" -j calyx-count',
    opts.inputRule ?? '-p tcp -m tcp --dport 9 -j DROP',
  ];
  return {
    v4: {
      filter: table(
        {
          'calyx-INPUT': input,
          'calyx-count': ['-j RETURN'],
          'calyx-set-user': ['-m set --match-set calyx-4-test src -j RETURN'],
          ...(opts.extraChain ? { 'calyx-extra': ['-j RETURN'] } : {}),
        },
        { INPUT: '-j calyx-INPUT' },
      ),
      raw: table({ 'calyx-PREROUTING': ['-j RETURN'] }, { PREROUTING: '-j calyx-PREROUTING' }),
    },
    v6: {
      filter: table({ 'calyx-INPUT': ['-p ipv6-icmp -j RETURN'] }, { INPUT: '-j calyx-INPUT' }),
    },
    ipsets: new Map([
      [
        'calyx-4-test',
        { family: 4, type: 'hash:net', members: opts.members ?? ['10.0.0.1/32', '192.0.2.0/24'] },
      ],
      ['calyx-6-test', { family: 6, type: 'hash:net,iface', members: ['2001:db8::1/128,tap1'] }],
    ]),
  };
}

describeIntegration(
  'IptablesProgrammer on real iptables and ipset',
  {
    root: true,
    commands: ['ip', 'iptables-restore', 'iptables-save', 'ip6tables-save', 'ipset', 'ping'],
  },
  () => {
    let bed: Testbed;
    let host: TestHost;
    const save = async (args: string[] = []) =>
      (await bed.exec(host.netns, ['iptables-save', ...args])).stdout
        .split('\n')
        .filter((l) => !l.startsWith('#'))
        .join('\n');
    const ipt = (args: string[]) => bed.exec(host.netns, ['iptables', ...args]);
    const programmer = () => new IptablesProgrammer({ runner: bed.runner, netns: host.netns });
    const rulesOf = async (chain: string) =>
      (await save(['-t', 'filter'])).split('\n').filter((l) => l.startsWith(`-A ${chain} `));

    beforeAll(async () => {
      bed = await Testbed.create();
      host = await bed.addHost('compute-1');
    });
    afterAll(async () => {
      await bed?.dispose();
    });

    it('programs chains, hooks first and ipsets, keeping rules that are not ours', async () => {
      await ipt(['-A', 'INPUT', '-p', 'udp', '--dport', '7', '-j', 'ACCEPT']);
      const report = await programmer().apply(desired());
      expect(report.details).toMatchObject({ chainsWritten: 5, hooksFixed: 3, ipsetsEnsured: 2 });
      const input = await rulesOf('INPUT');
      expect(input[0]).toMatch(/^-A INPUT -m comment --comment "cx:[0-9a-f]{16}" -j calyx-INPUT$/);
      expect(input[1]).toBe('-A INPUT -p udp -m udp --dport 7 -j ACCEPT');
      expect(await rulesOf('calyx-INPUT')).toEqual([
        expect.stringMatching(
          /-i lo -p icmp -m comment --comment "cx:[0-9a-f]{16} loopback ping" -j calyx-count$/,
        ),
        expect.stringMatching(/--dport 9 -j DROP$/),
      ]);
      const v6 = (await bed.exec(host.netns, ['ip6tables-save'])).stdout;
      expect(v6).toContain('-j calyx-INPUT');
      const sets = (await bed.exec(host.netns, ['ipset', 'save'])).stdout;
      expect(sets).toContain('add calyx-4-test 192.0.2.0/24');
      expect(sets).toContain('add calyx-6-test 2001:db8::1,tap1');
    });

    it('after a restart adopts everything as it is: nothing rewritten, counters untouched', async () => {
      // Traffic through our rules, so their counters are not zero.
      await bed.exec(host.netns, ['ping', '-c', '3', '-i', '0.01', '127.0.0.1']);
      const before = await save(['-c']);
      expect(before).toMatch(/\[[1-9]\d*:\d+\] -A calyx-INPUT -i lo -p icmp/);
      const report = await programmer().apply(desired());
      expect(report.changes).toBe(0);
      // The same rules, and no counter went back (a rewritten rule starts again from zero);
      // a stray packet in the namespace may still add to them meanwhile.
      expectUntouched(before, await save(['-c']));
    });

    it('repairs a rule deleted by hand and a hook that is no longer first, on the next read', async () => {
      const p = programmer();
      await p.apply(desired());
      await ipt(['-D', 'calyx-INPUT', '2']);
      await ipt(['-I', 'INPUT', '1', '-p', 'tcp', '--dport', '8', '-j', 'ACCEPT']);
      // Between reads the programmer trusts what it wrote: nothing to do.
      expect((await p.apply(desired())).changes).toBe(0);
      p.invalidate();
      const report = await p.apply(desired());
      expect(report.details).toMatchObject({ chainsWritten: 1, hooksFixed: 1 });
      expect(await rulesOf('calyx-INPUT')).toHaveLength(2);
      const input = await rulesOf('INPUT');
      expect(input[0]).toContain('-j calyx-INPUT');
      expect(input).toContain('-A INPUT -p tcp -m tcp --dport 8 -j ACCEPT');
      expect(input.filter((l) => l.includes('calyx-INPUT'))).toHaveLength(1);
    });

    it('rewrites only changed chains and removes stale ones (kept, flushed, while someone else uses them)', async () => {
      const p = programmer();
      await p.apply(desired({ extraChain: true }));
      await ipt(['-A', 'FORWARD', '-j', 'calyx-extra']);
      await ipt(['-A', 'OUTPUT', '-j', 'calyx-count']);
      const changed = await p.apply(desired({ inputRule: '-p tcp -m tcp --dport 10 -j DROP' }));
      expect(changed.details).toMatchObject({ chainsWritten: 1, chainsDeleted: 1 });
      expect(await rulesOf('calyx-extra')).toEqual([]);
      expect(await save()).toContain(':calyx-extra - ');
      // Once the foreign reference is gone, the next read deletes it.
      await ipt(['-D', 'FORWARD', '-j', 'calyx-extra']);
      p.invalidate();
      // The jump to calyx-count in OUTPUT was not ours (no hash) but points at our chain: removed.
      const r = await p.apply(desired({ inputRule: '-p tcp -m tcp --dport 10 -j DROP' }));
      expect(r.details).toMatchObject({ chainsDeleted: 1, hooksFixed: 1 });
      const text = await save();
      expect(text).not.toContain('calyx-extra');
      expect(text).not.toContain('-A OUTPUT');
    });

    it('updates ipset members without touching chains; replaces wholesale changes by swap', async () => {
      const p = programmer();
      await p.apply(desired());
      const chainsBefore = await save(['-c']);
      const one = await p.apply(
        desired({ members: ['10.0.0.1/32', '192.0.2.0/24', '10.0.0.2/32'] }),
      );
      expect(one.details).toMatchObject({
        chainsWritten: 0,
        ipsetMembersAdded: 1,
        ipsetsSwapped: 0,
      });
      const many = Array.from({ length: 200 }, (_, i) => `10.9.${i >> 8}.${i & 255}/32`);
      const swap = await p.apply(desired({ members: many }));
      expect(swap.details).toMatchObject({ chainsWritten: 0, ipsetsSwapped: 1 });
      expectUntouched(chainsBefore, await save(['-c']));
      const list = (await bed.exec(host.netns, ['ipset', 'list', 'calyx-4-test'])).stdout;
      expect(list).toContain('Number of entries: 200');
      expect(list).toContain('References: 1');
      // A restarted programmer finds the set as it should be.
      expect((await programmer().apply(desired({ members: many }))).changes).toBe(0);
    });

    it('refuses bad names before changing anything', async () => {
      const before = await save();
      const bad = desired();
      (bad.v4.filter!.chains as Map<string, string[]>).set('calyx-x; -F', ['-j DROP']);
      await expect(programmer().apply(bad)).rejects.toThrow(InvalidNameError);
      const badSet = desired();
      (badSet.ipsets as Map<string, unknown>).set('calyx-4-x', {
        family: 4,
        type: 'hash:net',
        members: ['1.2.3.4/32 -exist'],
      });
      await expect(programmer().apply(badSet)).rejects.toThrow(InvalidNameError);
      expect(await save()).toBe(before);
    });
  },
);
