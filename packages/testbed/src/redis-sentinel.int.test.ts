import { existsSync } from 'node:fs';
import { expect, it } from 'vitest';
import { describeIntegration } from '@calyx/core/testing';
import { redisCommand, startRedisSentinel, type StartedRedisSentinel } from './index.js';

function allPids(rs: StartedRedisSentinel): number[] {
  return [rs.primary, ...rs.replicas, ...rs.sentinels].map((n) => n.pid);
}

describeIntegration('Redis Sentinel fixture', { commands: ['redis-server'] }, () => {
  it('starts a primary, a replica and 3 sentinels, fails over when the primary dies, and stops everything', async () => {
    let t = Date.now();
    const rs = await startRedisSentinel({ masterName: 'calyx-test' });
    console.log(`redis sentinel fixture started in ${Date.now() - t} ms`);
    try {
      expect(rs.replicas).toHaveLength(1);
      expect(rs.sentinels).toHaveLength(3);
      expect(rs.sentinelEndpoints).toEqual(
        rs.sentinels.map((s) => ({ host: '127.0.0.1', port: s.port })),
      );
      expect(rs.url).toBe(
        `redis+sentinel://${rs.sentinels.map((s) => `127.0.0.1:${s.port}`).join(',')}/calyx-test`,
      );
      for (const pid of allPids(rs)) process.kill(pid, 0); // throws for a PID that is gone
      expect(existsSync(rs.dataDir)).toBe(true);
      expect(await rs.currentPrimary()).toEqual({ host: '127.0.0.1', port: rs.primary.port });

      const replica = rs.replicas[0]!;
      expect(await redisCommand(rs.primary.port, ['ROLE'])).toEqual([
        'master',
        expect.any(Number),
        [['127.0.0.1', String(replica.port), expect.any(String)]],
      ]);
      expect((await redisCommand(replica.port, ['ROLE'])) as unknown[]).toEqual([
        'slave',
        '127.0.0.1',
        rs.primary.port,
        'connected',
        expect.any(Number),
      ]);
      for (const s of rs.sentinels)
        expect(await redisCommand(s.port, ['ROLE'])).toEqual(['sentinel', ['calyx-test']]);

      // Written before the failover and acknowledged by the replica: survives it.
      expect(await redisCommand(rs.primary.port, ['SET', 'before', 'failover'])).toBe('OK');
      expect(await redisCommand(rs.primary.port, ['WAIT', '1', '2000'])).toBe(1);

      const killed = await rs.killPrimary();
      expect(killed.port).toBe(rs.primary.port);
      expect(() => process.kill(rs.primary.pid, 0)).toThrow();

      t = Date.now();
      const promoted = await rs.waitForFailover(killed.port, 30_000);
      console.log(
        `failover: ${promoted.elapsedMs} ms from the kill to port ${promoted.port} as primary (waited ${Date.now() - t} ms)`,
      );
      expect(promoted).toMatchObject({ host: '127.0.0.1', port: replica.port });
      expect(await rs.currentPrimary()).toEqual({ host: '127.0.0.1', port: replica.port });
      expect(((await redisCommand(replica.port, ['ROLE'])) as unknown[])[0]).toBe('master');
      expect(await redisCommand(replica.port, ['GET', 'before'])).toBe('failover');
      expect(await redisCommand(replica.port, ['SET', 'after', 'failover'])).toBe('OK');
      expect(await redisCommand(replica.port, ['GET', 'after'])).toBe('failover');
    } finally {
      await rs.stop();
    }
    for (const pid of allPids(rs)) expect(() => process.kill(pid, 0)).toThrow();
    expect(existsSync(rs.dataDir)).toBe(false);
    await rs.stop(); // idempotent
  });

  it('with 2 replicas, points the remaining replica at the promoted one', async () => {
    await using rs = await startRedisSentinel({ replicas: 2 });
    expect(rs.masterName).toBe('calyx');
    const killed = await rs.killPrimary();
    const promoted = await rs.waitForFailover(killed.port);
    console.log(`failover with 2 replicas: ${promoted.elapsedMs} ms`);
    const other = rs.replicas.find((r) => r.port !== promoted.port)!;
    expect(rs.replicas.map((r) => r.port)).toContain(promoted.port);
    await expect
      .poll(async () => ((await redisCommand(other.port, ['ROLE'])) as unknown[]).slice(0, 4), {
        timeout: 15_000,
      })
      .toEqual(['slave', '127.0.0.1', promoted.port, 'connected']);
  });

  it('refuses a master name that cannot go into a sentinel config', async () => {
    await expect(startRedisSentinel({ masterName: 'two words' })).rejects.toThrow(/masterName/);
  });
});
