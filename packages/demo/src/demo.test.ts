import { describe, expect, it } from 'vitest';
import { createMemoryDatastore } from '@calyx/datastore-memory';
import { datastoreWalkthrough } from './datastore-walkthrough.js';

describe('datastore walkthrough', () => {
  it('stores the resources, refuses the bad subnet and reports every watch event', async () => {
    const store = createMemoryDatastore();
    const lines: string[] = [];
    const { events } = await datastoreWalkthrough(store, (l) => lines.push(l));
    const text = lines.join('\n');
    expect(text).toContain('Subnet subnet-bad: gatewayIp 10.67.0.1 is outside 10.66.0.0/24');
    expect(text).toContain('/calyx/v1/host/compute-1/endpoint/port-1-8f1c2d');
    expect(text).toMatch(/DELETE Endpoint port-2-8f1c2d/);
    // 3 resources + 2×(endpoint, location) created, then one delete.
    expect(events).toBe(8);
    expect(await store.get('/calyx/v1/subnet/subnet-bad')).toBeUndefined();
    await store.close();
  });
});
