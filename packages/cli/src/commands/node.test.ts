import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { RecordingRunner } from '@calyx/dataplane';
import { birdProtocolNameOf } from '@calyx/dataplane-bird';
import { createMemoryDatastore, type MemoryDatastore } from '@calyx/datastore-memory';
import { keys } from '@calyx/model';
import { EXIT } from '../exit-codes.js';
import { calyxctl, putEndpointStatus, seed, tempDirFixture } from '../harness.js';
import type { NodeStatus } from '../node-status.js';

const NOW = new Date('2026-11-26T10:00:30Z');
const toCompute2 = birdProtocolNameOf({ name: 'node-compute-2', family: 4 });
const toEdge = birdProtocolNameOf({ name: 'peer-edge', family: 4 });

const showProtocols = (edge: string) =>
  [
    'BIRD 2.0.12 ready.',
    'Name       Proto      Table      State  Since         Info',
    'device1    Device     ---        up     2026-11-26 10:00:00  ',
    'kernel4    Kernel     master4    up     2026-11-26 10:00:00  ',
    `${toCompute2} BGP        ---        up     2026-11-26 10:00:01  Established   `,
    `${toEdge} BGP        ---        ${edge}`,
    'bgp4_old_host_abcdef BGP        ---        start  2026-11-26 10:00:00  Active        Socket: Connection refused',
  ].join('\n');

describe('calyxctl node status', () => {
  let store: MemoryDatastore;
  let runner: RecordingRunner;
  const dir = tempDirFixture('calyxctl-node');
  const run = (...argv: string[]) =>
    calyxctl(argv, { datastore: store, runner, now: () => NOW, cwd: dir.path });

  const alive = async (host: string, inSync = true, lease?: bigint) =>
    store.put(
      keys.hostStatus(host),
      JSON.stringify({
        host,
        agent: 'calyx-agent',
        version: '0.1.0',
        startedAt: '2026-11-26T09:00:00Z',
        updatedAt: '2026-11-26T10:00:20Z',
        inSync,
        endpoints: 1,
      }),
      lease !== undefined ? { lease } : {},
    );
  const endpointStatus = (endpointId: string, status: 'up' | 'error', reason = '') =>
    putEndpointStatus(store, ['compute-1', endpointId, status, '2026-11-26T10:00:10Z', reason]);
  /** `node status compute-1` asking its BIRD. */
  const withBird = (...extra: string[]) =>
    run('node', 'status', 'compute-1', '--bird-state-dir', '/run/calyx/agent', ...extra);

  beforeEach(async () => {
    store = createMemoryDatastore();
    await seed(store);
    runner = new RecordingRunner().on(['birdc'], {
      stdout: showProtocols('up     2026-11-26 10:00:02  Established'),
    });
  });

  it('a healthy host: agent alive and in sync, endpoints up, every BGP session established (exit 0)', async () => {
    await alive('compute-1');
    await endpointStatus('ep1', 'up');
    const r = await withBird('--netns', 'h1');
    expect(r.code).toBe(EXIT.OK);
    expect(runner.calls.map((c) => [c.argv, c.netns])).toEqual([
      [['birdc', '-s', '/run/calyx/agent/bird.ctl', 'show', 'protocols'], 'h1'],
    ]);
    expect(r.stdout).toContain('agent:      alive, in sync (calyx-agent 0.1.0, updated 10s ago)');
    expect(r.stdout).toContain('bgp:        2/2 sessions established');
    expect(r.stdout).toContain('health:     ok');
    const table = r.stdout
      .split('\n')
      .filter(
        (l) => l.startsWith('node-') || l.startsWith('peer-') || l.startsWith('(unexpected)'),
      );
    expect(table.map((l) => l.split(/\s{2,}/).slice(0, 4))).toEqual([
      ['node-compute-2', '172.31.0.2', toCompute2, 'up'],
      ['peer-edge', '172.31.0.254', toEdge, 'up'],
      ['(unexpected)', '-', 'bgp4_old_host_abcdef', 'start'],
    ]);
    expect(r.stdout).toMatch(/ep1\s+tapep1\s+up\s+2026-11-26T10:00:10Z/);
    const json = JSON.parse((await withBird('-o', 'json')).stdout) as NodeStatus;
    expect(json).toMatchObject({
      host: 'compute-1',
      healthy: true,
      agent: { alive: true, inSync: true, ageSeconds: 10 },
      endpoints: [{ id: 'ep1', status: 'up' }],
      bgp: { error: null, sessions: [{ established: true }, { established: true }] },
    });
    expect(parse((await run('node', 'status', 'compute-1', '-o', 'yaml')).stdout)).toMatchObject({
      host: 'compute-1',
      bgp: null,
    });
  });

  it('exit 1 with the reasons: a session not established, an endpoint in error', async () => {
    await alive('compute-1');
    await endpointStatus('ep1', 'error', 'tap missing');
    runner = new RecordingRunner().on(['birdc'], {
      stdout: showProtocols('start  2026-11-26 10:00:00  Active        Socket: Connection refused'),
    });
    const r = await withBird();
    expect(r.code).toBe(EXIT.FAILURE);
    expect(r.stdout).toContain('problem: endpoint ep1: error tap missing');
    expect(r.stdout).toContain(
      'problem: BGP session with peer-edge (172.31.0.254) is not established: start Active Socket: Connection refused',
    );
  });

  it('exit 1 when BIRD does not answer, or the agent has no liveness record (its lease ran out)', async () => {
    runner = new RecordingRunner().on(['birdc'], {
      exitCode: 1,
      stderr:
        'Unable to connect to server control socket (/run/calyx/agent/bird.ctl): No such file or directory',
    });
    const lease = await store.grantLease(10);
    await alive('compute-1', true, lease.id);
    const down = await withBird('-o', 'json');
    expect(down.code).toBe(EXIT.FAILURE);
    expect((JSON.parse(down.stdout) as NodeStatus).bgp?.error).toMatch(
      /Unable to connect to server control socket/,
    );
    await store.revokeLease(lease.id);
    const dead = await run('node', 'status', 'compute-1');
    expect(dead.code).toBe(EXIT.FAILURE);
    expect(dead.stdout).toContain('agent:      dead (no liveness record)');
  });

  it('takes the BIRD state directory from the config file', async () => {
    await writeFile(
      join(dir.path, 'calyx.yaml'),
      'datastore: memory://unused\nbirdStateDir: /var/lib/calyx/agent\nnetns: h9\n',
    );
    await alive('compute-1');
    await run('node', 'status', 'compute-1', '--config', 'calyx.yaml');
    expect(runner.calls[0]).toMatchObject({
      argv: ['birdc', '-s', '/var/lib/calyx/agent/bird.ctl', 'show', 'protocols'],
      netns: 'h9',
    });
  });

  it('lists every host (exit 1 when one is unhealthy)', async () => {
    await alive('compute-1');
    await endpointStatus('ep1', 'up');
    await alive('compute-3', false);
    const r = await run('node', 'status');
    expect(r.code).toBe(EXIT.FAILURE);
    // Columns are single words: `awk` reads them.
    expect(r.stdout.replace(/ +/g, ' ')).toBe(
      [
        'HOST REGISTERED AGENT IN-SYNC UPDATED ENDPOINTS UP DOWN ERROR HEALTH',
        'compute-1 true alive true 10s 1 1 0 0 ok',
        'compute-2 true dead - - 1 0 0 0 problems',
        'compute-3 false alive false 10s 0 0 0 0 problems',
        '',
      ].join('\n'),
    );
    expect(runner.calls).toEqual([]);
    const json = JSON.parse((await run('node', 'status', '-o', 'json')).stdout) as NodeStatus[];
    expect(json.map((s) => [s.host, s.healthy])).toEqual([
      ['compute-1', true],
      ['compute-2', false],
      ['compute-3', false],
    ]);
  });

  it('exit 3 for an unknown host, 2 for bad usage', async () => {
    expect((await run('node', 'status', 'compute-9')).code).toBe(EXIT.NOT_FOUND);
    expect((await run('node', 'status', '--bird-state-dir', '/x')).code).toBe(EXIT.USAGE);
    expect((await run('node', 'status', 'bad/host')).code).toBe(EXIT.USAGE);
  });
});
