import { describe, expect, it } from 'vitest';
import { NotLeaderError } from '@calyx/datastore';
import { MemoryDatastore, MemoryEngine } from '@calyx/datastore-memory';
import { HaDriver } from './index.js';

describe('HaDriver', () => {
  it('has one active instance; a standby names the leader and takes over when it resigns', async () => {
    const engine = new MemoryEngine();
    const a = new HaDriver(new MemoryDatastore(engine), {
      instanceId: 'driver-a',
      takeoverSeconds: 5,
    });
    a.start();
    const da = await a.whenActive();
    const b = new HaDriver(new MemoryDatastore(engine), {
      instanceId: 'driver-b',
      takeoverSeconds: 5,
    });
    b.start();
    await expect(b.driver()).rejects.toThrow(/the leader is driver-a/);
    await da.createNetwork({ id: 'net-a' });

    await a.close();
    const db = await b.whenActive();
    expect(b.isActive).toBe(true);
    expect(await b.leader()).toBe('driver-b');
    await db.createNetwork({ id: 'net-b' });
    // The deposed instance's driver cannot write any more.
    await expect(da.createNetwork({ id: 'net-late' })).rejects.toBeInstanceOf(NotLeaderError);
    expect((await db.listNetworks()).map((n) => n.id).sort()).toEqual(['net-a', 'net-b']);
    await b.close();
  });
});
