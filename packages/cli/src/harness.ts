// Test support (not exported): runs calyxctl in-process against a datastore and captures output.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { ResourceClient, type Datastore, type TxnRequest } from '@calyx/datastore';
import { interceptDatastore } from '@calyx/datastore/testing';
import type { CommandRunner } from '@calyx/dataplane';
import { keys, type EndpointStatus, type InputOf } from '@calyx/model';
import type { CalyxctlIo } from './context.js';
import type { OutputStream } from './progress.js';
import { runCalyxctl } from './run.js';

/** Collects what is written to it. */
export class Sink implements OutputStream {
  text = '';
  constructor(readonly isTTY = false) {}
  write(chunk: string): boolean {
    this.text += chunk;
    return true;
  }
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export async function calyxctl(
  argv: readonly string[],
  opts: Partial<CalyxctlIo> & { tty?: boolean; runner?: CommandRunner } = {},
): Promise<RunResult> {
  const stdout = new Sink();
  const stderr = new Sink(opts.tty ?? false);
  const { tty: _tty, ...io } = opts;
  const code = await runCalyxctl(argv, { env: {}, ...io, stdout, stderr });
  return { code, stdout: stdout.text, stderr: stderr.text };
}

/** Every key and value (and the revision): equal snapshots mean nothing was written. */
export async function snapshot(store: Datastore): Promise<{ revision: bigint; kv: string[] }> {
  const r = await store.list('/');
  return { revision: r.revision, kv: r.items.map((i) => `${i.key}=${i.value}`) };
}

export const network: InputOf<'Network'> = { id: 'net-a', name: 'tenant a' };
export const subnet: InputOf<'Subnet'> = { id: 'sub-a', networkId: 'net-a', cidr: '10.65.0.0/24' };
export const webGroup: InputOf<'SecurityGroup'> = {
  id: 'sg-web',
  rules: [
    { direction: 'ingress', protocol: 'tcp', portRangeMin: 80 },
    { direction: 'ingress', protocol: 'tcp', portRangeMin: 22, remoteGroupId: 'sg-web' },
    { direction: 'egress' },
  ],
};
export const hosts: InputOf<'Host'>[] = [
  { name: 'compute-1', ipv4Address: '172.31.0.1' },
  { name: 'compute-2', ipv4Address: '172.31.0.2' },
];
export const endpoint = (
  id: string,
  host: string | null,
  ip: string,
  extra: Partial<InputOf<'Endpoint'>> = {},
): InputOf<'Endpoint'> => ({
  id,
  host,
  networkId: 'net-a',
  mac: 'fa:16:3e:00:00:01',
  fixedIps: [{ subnetId: 'sub-a', ipAddress: ip }],
  securityGroupIds: ['sg-web'],
  ...extra,
});

/** A small deployment: a network, a subnet, a group, two hosts, two endpoints (with locations). */
export async function seed(store: Datastore): Promise<void> {
  const txn = new ResourceClient(store)
    .txn()
    .create('Network', network)
    .create('Subnet', subnet)
    .create('SecurityGroup', webGroup)
    .create('BgpConfiguration', { name: 'default' })
    .create('IpPool', { name: 'public', cidr: '203.0.113.0/24', advertise: true })
    .create('BgpPeer', { name: 'edge', peerIp: '172.31.0.254', asNumber: 65000, role: 'edge' });
  for (const h of hosts) txn.create('Host', h);
  for (const [id, host, ip] of [
    ['ep1', 'compute-1', '10.65.0.10'],
    ['ep2', 'compute-2', '10.65.0.20'],
  ] as const) {
    txn.create('Endpoint', endpoint(id, host, ip)).create('EndpointLocation', { id, host });
  }
  await txn.commit();
}

/** An agent's report about one endpoint, as the agent writes it. */
export function putEndpointStatus(
  store: Datastore,
  [host, endpointId, status, updatedAt, reason = '']: [
    string,
    string,
    EndpointStatus['status'],
    string,
    string?,
  ],
): Promise<unknown> {
  return store.put(
    keys.endpointStatus(host, endpointId),
    JSON.stringify({ endpointId, host, status, reason, updatedAt }),
  );
}

/** Whether every line of an apply's report says `unchanged`. */
export function allUnchanged(stdout: string): boolean {
  const lines = stdout.trim().split('\n');
  return lines.length > 0 && lines.every((l) => l.endsWith(' unchanged'));
}

/** A temporary directory for the tests of a file (created before them, removed after). */
export function tempDirFixture(prefix: string): { readonly path: string } {
  const fixture = { path: '' };
  beforeAll(async () => {
    fixture.path = await mkdtemp(join(tmpdir(), `${prefix}-`));
  });
  afterAll(async () => {
    if (fixture.path) await rm(fixture.path, { recursive: true, force: true });
  });
  return fixture;
}

/** A datastore whose transactions first run `before` (to play a concurrent writer or a failure). */
export function intercepted(
  store: Datastore,
  before: (req: TxnRequest, n: number) => Promise<void>,
): Datastore {
  let n = 0;
  return interceptDatastore(store, (inner) => ({
    txn: async (req: TxnRequest) => {
      await before(req, ++n);
      return inner.txn(req);
    },
  }));
}
