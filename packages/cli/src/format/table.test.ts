import { describe, expect, it } from 'vitest';
import { parseResource } from '@calyx/model';
import { COLUMNS, tableOf } from './columns.js';
import { renderResources } from './output.js';
import { cellText, renderFields, renderTable } from './table.js';

describe('tables', () => {
  it('pads columns, prints - for empty cells and lists with commas, leaves no trailing blanks', () => {
    const t = renderTable(
      ['ID', 'ADDRESSES', 'HOST'],
      [
        ['a', ['10.0.0.1', '10.0.0.2'], null],
        ['longer-id', [], 'h1'],
      ],
    );
    expect(t).toBe(
      [
        'ID         ADDRESSES          HOST',
        'a          10.0.0.1,10.0.0.2  -',
        'longer-id  -                  h1',
        '',
      ].join('\n'),
    );
    expect(cellText(false)).toBe('false');
    expect(cellText('')).toBe('-');
  });

  it('aligns fields', () => {
    expect(
      renderFields([
        ['a', 1],
        ['long', null],
      ]),
    ).toBe('a:    1\nlong: -\n');
  });

  it('has columns for every kind, headers one word each (so awk can split them)', () => {
    for (const [kind, c] of Object.entries(COLUMNS)) {
      expect(c.headers.length, kind).toBeGreaterThan(1);
      for (const h of c.headers) expect(h, kind).toMatch(/^[A-Z0-9-]+$/);
    }
    const ep = parseResource('Endpoint', {
      id: 'e1',
      host: null,
      networkId: 'n1',
      mac: 'fa:16:3e:00:00:01',
      fixedIps: [{ subnetId: 's', ipAddress: '10.0.0.5' }],
    });
    expect(tableOf('Endpoint', [ep]).rows).toEqual([
      ['e1', null, 'n1', 'tape1', 'fa:16:3e:00:00:01', ['10.0.0.5'], [], 'up'],
    ]);
  });

  it('titles one table per kind when several kinds are shown, skipping empty ones', () => {
    const text = renderResources(
      [
        { kind: 'Network', items: [parseResource('Network', { id: 'n1' })] },
        { kind: 'Subnet', items: [] },
        { kind: 'Host', items: [parseResource('Host', { name: 'h1', ipv4Address: '10.0.0.1' })] },
      ],
      'table',
    );
    expect(text).toBe(
      'Network\nID  MTU   PROJECT  NAME\nn1  1500  -        -\n\nHost\nNAME  IPV4      IPV6  AS  RR-CLUSTER\nh1    10.0.0.1  -     -   -\n',
    );
  });
});
