import { spawn } from 'node:child_process';
import { expect, it } from 'vitest';
import { ExecCommandRunner } from '@calyx/dataplane';
import { describeIntegration } from '@calyx/core/testing';
import { Testbed, creatorPid, startEtcd, startRedis, sweepStaleNamespaces } from './index.js';

const runner = new ExecCommandRunner();

async function namespaces(): Promise<string[]> {
  return (
    JSON.parse((await runner.run(['ip', '-json', 'netns', 'list'])).stdout || '[]') as {
      name: string;
    }[]
  ).map((n) => n.name);
}

describeIntegration('Testbed', { root: true, commands: ['ip', 'ping'] }, () => {
  it('builds hosts on a fabric and VMs on taps, then removes every namespace', async () => {
    const bed = await Testbed.create();
    let created: string[];
    try {
      const h1 = await bed.addHost('compute-1');
      const h2 = await bed.addHost('compute-2');
      expect(await bed.ping(h1, h2.ipv4)).toBe(true);
      expect(await bed.ping(h1, h2.ipv6)).toBe(true);
      const vm = await bed.addVm(h1, {
        name: 'vm1',
        tapName: 'tapc2930496-e8',
        mac: 'fa:16:3e:00:00:01',
        ipv4: { address: '10.65.0.10', prefixLength: 24, gateway: '10.65.0.1' },
      });
      const tap = JSON.parse(
        (await bed.exec(h1.netns, ['ip', '-json', 'link', 'show', 'tapc2930496-e8'])).stdout,
      ) as { operstate: string }[];
      expect(tap[0]?.operstate).toBe('UP');
      const eth0 = JSON.parse(
        (await bed.exec(vm.netns, ['ip', '-json', 'link', 'show', 'eth0'])).stdout,
      ) as { address: string }[];
      expect(eth0[0]?.address).toBe('fa:16:3e:00:00:01');
      created = (await namespaces()).filter((n) => n.startsWith(bed.runId));
      expect(created.sort()).toEqual(
        [`${bed.runId}-fab`, `${bed.runId}-h1`, `${bed.runId}-h2`, `${bed.runId}-v1`].sort(),
      );
      expect(creatorPid(created[0]!)).toBe(process.pid);
    } finally {
      await bed.dispose();
    }
    expect((await namespaces()).filter((n) => n.startsWith(bed.runId))).toEqual([]);
  });

  it('keeps pinging until a route appears (a ping without a route exits at once)', async () => {
    const bed = await Testbed.create();
    try {
      const h1 = await bed.addHost('h1');
      const h2 = await bed.addHost('h2');
      await bed.exec(h1.netns, ['ip', 'addr', 'add', '10.99.0.1/32', 'dev', 'lo']);
      const noRoute = bed.startPinger(h2, '10.99.0.1');
      await expect(noRoute.waitForReplies(1)).rejects.toThrow(/Network is unreachable/);
      await noRoute.stop();
      const waiting = bed.waitForPing(h2, '10.99.0.1', 10_000);
      await new Promise((r) => setTimeout(r, 300)); // the route comes later
      await bed.exec(h2.netns, ['ip', 'route', 'add', '10.99.0.1/32', 'via', h1.ipv4]);
      // Resolves (it throws after 10 s otherwise): before, the first ping's exit left it
      // waiting out its whole timeout.
      await waiting;
      expect(await bed.ping(h2, '10.99.0.1')).toBe(true);
    } finally {
      await bed.dispose();
    }
  });

  it('stops processes left inside its namespaces when disposed', async () => {
    const bed = await Testbed.create();
    const h = await bed.addHost('h');
    // A daemon (forked away, not our child) found in the namespace…
    // (Its stdio must not be ours: the runner waits for output to end, the daemon never ends it.)
    await new Promise((resolve) =>
      spawn('ip', ['netns', 'exec', h.netns, 'setsid', '-f', 'sleep', '301'], {
        stdio: 'ignore',
      }).on('exit', resolve),
    );
    const inside = (await runner.run(['ip', 'netns', 'pids', h.netns])).stdout
      .split(/\s+/)
      .filter(Boolean)
      .map(Number);
    expect(inside).toHaveLength(1);
    // …and a child spawned just now, perhaps not inside its namespace yet.
    const sleeper = bed.runner.spawn(['sleep', '300'], { netns: h.netns });
    await bed.dispose();
    const exit = await sleeper.exited;
    expect(exit.signal).toBe('SIGTERM');
    expect(() => process.kill(inside[0]!, 0)).toThrow();
  });

  it('sweeps namespaces whose creating process is dead', async () => {
    const stale = `cx${(4_000_000).toString(36)}beef-h1`;
    await runner.run(['ip', 'netns', 'add', stale]);
    const removed = await sweepStaleNamespaces(runner);
    expect(removed).toContain(stale);
    expect(await namespaces()).not.toContain(stale);
  });
});

describeIntegration('started services', { commands: ['etcd', 'redis-server'] }, () => {
  it('starts etcd on a free loopback port and stops it by PID', async () => {
    const etcd = await startEtcd();
    const r = await fetch(`${etcd.endpoint}/health`);
    expect(r.ok).toBe(true);
    expect(etcd.endpoint).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    await etcd.stop();
    expect(() => process.kill(etcd.pid, 0)).toThrow();
  });

  it('starts redis-server on a free loopback port and stops it by PID', async () => {
    const redis = await startRedis();
    expect(redis.url).toMatch(/^redis:\/\/127\.0\.0\.1:\d+$/);
    await redis.stop();
    expect(() => process.kill(redis.pid, 0)).toThrow();
  });
});
