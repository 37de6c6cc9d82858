// A driver instance in its own process, for the HA test to kill: campaigns, and once active
// creates networks as fast as it can, one JSON line per outcome on stdout.
import { EtcdDatastore } from '@calyx/datastore-etcd';
import { HaDriver } from '@calyx/driver';

const [endpoint = '', namespace = '', id = 'driver-a', ttl = '3'] = process.argv.slice(2);
const store = new EtcdDatastore({ endpoints: [endpoint], namespace });
const ha = new HaDriver(store, { instanceId: id, takeoverSeconds: Number(ttl) });
ha.start();
const driver = await ha.whenActive();
process.stdout.write(JSON.stringify({ active: true, since: String(ha.activeSince) }) + '\n');
for (let i = 0; ; i++) {
  try {
    await driver.createNetwork({ id: `net-${id}-${i}` });
    process.stdout.write(JSON.stringify({ wrote: i }) + '\n');
  } catch (e) {
    process.stdout.write(
      JSON.stringify({ error: (e as { code?: string }).code ?? String(e) }) + '\n',
    );
  }
}
