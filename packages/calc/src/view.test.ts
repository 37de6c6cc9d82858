import { describe, expect, it } from 'vitest';
import { parseResource, type Kind, type ResourceOf } from '@calyx/model';
import { viewOf } from './index.js';

describe('viewOf', () => {
  it('takes every kind calc reads from a source, and the BGP configuration named default', () => {
    const items: Partial<Record<Kind, Map<string, unknown>>> = {
      Host: new Map([['h1', parseResource('Host', { name: 'h1', ipv4Address: '10.0.0.1' })]]),
      BgpConfiguration: new Map([
        ['other', parseResource('BgpConfiguration', { name: 'other', asNumber: 65001 })],
        ['default', parseResource('BgpConfiguration', { name: 'default', asNumber: 65002 })],
      ]),
    };
    const view = viewOf({
      map: <K extends Kind>(kind: K) =>
        (items[kind] ?? new Map()) as ReadonlyMap<string, ResourceOf<K>>,
    });
    expect([...view.hosts.keys()]).toEqual(['h1']);
    expect(view.bgpConfiguration?.asNumber).toBe(65002);
    expect(view.endpoints.size).toBe(0);
  });
});
