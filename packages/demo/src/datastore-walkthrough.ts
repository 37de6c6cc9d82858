import { keys, type Kind } from '@calyx/model';
import {
  ResourceClient,
  Syncer,
  kindOfKey,
  type Datastore,
  type SyncerMessage,
} from '@calyx/datastore';

/**
 * Creates a network, a subnet, a security group and two ports through the typed resource
 * client, shows what is stored and what a watcher (the Syncer an agent uses) sees.
 */
export async function datastoreWalkthrough(
  store: Datastore,
  print: (line: string) => void,
): Promise<{ events: number }> {
  const client = new ResourceClient(store);
  const syncer = new Syncer(store, { prefixes: ['/calyx/v1/'] });
  const seen: string[] = [];
  const it = syncer[Symbol.asyncIterator]();
  const next = async (): Promise<SyncerMessage> => {
    const r = await it.next();
    if (r.done) throw new Error('syncer ended');
    return r.value;
  };
  let m = await next();
  while (m.type !== 'in-sync') m = await next();

  print('Writing resources through the validated resource client:');
  const revision = await client
    .txn()
    .create('Network', { id: 'net-a', name: 'tenant-a', mtu: 1450 })
    .create('Subnet', {
      id: 'subnet-a',
      networkId: 'net-a',
      cidr: '10.65.0.0/24',
      dnsServers: ['10.65.0.53'],
    })
    .create('SecurityGroup', {
      id: 'sg-web',
      name: 'web',
      rules: [
        { direction: 'ingress', protocol: 'tcp', portRangeMin: 80 },
        { direction: 'ingress', protocol: 'icmp' },
        { direction: 'egress' },
      ],
    })
    .commit();
  print(`  network, subnet and security group created in one transaction at revision ${revision}`);
  for (const [i, host] of ['compute-1', 'compute-2'].entries()) {
    const id = `port-${i + 1}-8f1c2d`;
    await client
      .txn()
      .create('Endpoint', {
        id,
        host,
        networkId: 'net-a',
        mac: `fa:16:3e:00:00:0${i + 1}`,
        fixedIps: [{ subnetId: 'subnet-a', ipAddress: `10.65.0.${10 + i}` }],
        securityGroupIds: ['sg-web'],
      })
      .create('EndpointLocation', { id, host })
      .commit();
  }
  try {
    await client.create('Subnet', {
      id: 'subnet-bad',
      networkId: 'net-a',
      cidr: '10.66.0.0/24',
      gatewayIp: '10.67.0.1',
    });
  } catch (e) {
    print(`  a bad subnet is refused before anything is written: ${(e as Error).message}`);
  }

  print('');
  print('Stored under /calyx/v1/:');
  const { items } = await store.list('/calyx/v1/');
  for (const kv of items) print(`  ${kv.key}  (rev ${kv.modRevision})`);
  const subnet = await client.get('Subnet', keys.subnet('subnet-a'));
  print(
    `  subnet-a as stored: gateway ${subnet?.value.gatewayIp}, pools ${subnet?.value.allocationPools.map((p) => `${p.start}-${p.end}`).join(',')}`,
  );

  await client.delete('Endpoint', keys.endpoint('compute-2', 'port-2-8f1c2d'));
  print('');
  print('What a watcher saw (the Syncer behind every agent):');
  while (seen.length < items.length + 1) {
    const msg = await next();
    if (msg.type !== 'changes') continue;
    for (const c of msg.changes) {
      const kind: Kind | undefined = kindOfKey(c.key);
      const line = `  ${c.type === 'put' ? 'PUT   ' : 'DELETE'} ${kind ?? '?'} ${c.key.split('/').pop()} @${c.type === 'put' ? c.kv.modRevision : msg.revision}`;
      seen.push(line);
      print(line);
    }
  }
  await syncer.close();
  return { events: seen.length };
}
