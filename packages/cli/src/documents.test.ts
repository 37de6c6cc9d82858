import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { parseResource } from '@calyx/model';
import {
  describeProblem,
  readDocuments,
  renderDocuments,
  renderValue,
  toDocument,
  validateDocuments,
} from './documents.js';

const check = (text: string) => {
  const read = readDocuments(text);
  const v = validateDocuments(read.docs);
  return { ...v, problems: [...read.problems, ...v.problems].map(describeProblem) };
};

describe('documents', () => {
  it('reads a multi-document YAML stream, skipping empty documents, with line numbers', () => {
    const r = readDocuments(
      ['kind: Network', 'id: n1', '---', '', 'kind: Network', 'id: n2', '---', ''].join('\n'),
    );
    expect(r.problems).toEqual([]);
    expect(r.docs).toEqual([
      { index: 1, line: 1, value: { kind: 'Network', id: 'n1' } },
      { index: 2, line: 5, value: { kind: 'Network', id: 'n2' } },
    ]);
  });

  it('reads a YAML list of documents and JSON objects and arrays', () => {
    expect(readDocuments('- kind: Network\n  id: a\n- kind: Network\n  id: b\n').docs).toEqual([
      { index: 1, line: 1, value: { kind: 'Network', id: 'a' } },
      { index: 2, line: 3, value: { kind: 'Network', id: 'b' } },
    ]);
    expect(readDocuments('{"kind":"Network","id":"a"}').docs).toEqual([
      { index: 1, value: { kind: 'Network', id: 'a' } },
    ]);
    expect(
      readDocuments(' [{"kind":"Network","id":"a"}, {"kind":"Network","id":"b"}]').docs,
    ).toHaveLength(2);
  });

  it('reads YAML flow style, which looks like JSON', () => {
    expect(readDocuments('{kind: Network, id: a}\n---\n{kind: Network, id: b}\n').docs).toEqual([
      { index: 1, line: 1, value: { kind: 'Network', id: 'a' } },
      { index: 2, line: 3, value: { kind: 'Network', id: 'b' } },
    ]);
  });

  it('reports syntax errors with where they are', () => {
    expect(readDocuments('{"kind": ').problems[0]!.message).toMatch(/^not valid JSON/);
    const y = readDocuments('kind: Network\nid: [unclosed\n');
    expect(y.problems[0]!.message).toMatch(/^not valid YAML/);
    expect(y.problems[0]!.line).toBeGreaterThan(0);
  });

  it('validates every document and reports each problem with its number and line', () => {
    const r = check(
      [
        'kind: Network',
        'id: n1',
        '---',
        'id: n2',
        '---',
        'kind: Netwrk',
        'id: n3',
        '---',
        'kind: Subnet',
        'id: s1',
        'networkId: n1',
        'cidr: 10.0.0.0/24',
        'gatewayIp: 10.0.1.1',
        '---',
        'kind: EndpointLocation',
        'id: e1',
        'host: null',
        '---',
        'kind: network',
        'id: n1',
        '---',
        '- 1',
        '---',
        'kind: Network',
        'id: n4',
        'colour: blue',
      ].join('\n'),
    );
    expect(r.valid.map((d) => d.id)).toEqual(['n1']);
    expect(r.problems).toEqual([
      'document 2 (line 4): kind is missing (one of Network, Subnet, SecurityGroup, Endpoint, EndpointLocation, Host, BgpConfiguration, BgpPeer, IpPool, IpamBlock, IpamHandle, BlockAffinity, EndpointStatus, HostStatus)',
      expect.stringMatching(/^document 3 \(line 6\): kind "Netwrk" is not a kind/),
      'document 4 (line 9): Subnet s1: gatewayIp 10.0.1.1 is outside 10.0.0.0/24',
      'document 5 (line 15): EndpointLocation records are written with their Endpoint: give the Endpoint instead',
      'document 6 (line 19): Network n1 is also document 1 (line 1)',
      'document 7 (line 22): must be an object with a kind and the fields',
      'document 8 (line 24): Network n4: colour blue is not a field of Network',
    ]);
  });

  it('treats an endpoint as one resource whatever host two documents give it', () => {
    const ep = (host: string) => ({
      kind: 'Endpoint',
      id: 'e1',
      host,
      networkId: 'n1',
      mac: 'fa:16:3e:00:00:01',
    });
    const r = check(JSON.stringify([ep('h1'), ep('h2')]));
    expect(r.problems).toEqual(['document 2: Endpoint e1 is also document 1']);
  });

  it('round-trips: rendered documents read back to the same resources, in YAML and JSON', () => {
    const resources = [
      toDocument(
        'Subnet',
        parseResource('Subnet', { id: 's1', networkId: 'n1', cidr: '10.0.0.0/24' }),
      ),
      toDocument(
        'Endpoint',
        parseResource('Endpoint', {
          id: 'e1',
          host: 'h1',
          networkId: 'n1',
          mac: 'FA:16:3E:00:00:01',
          fixedIps: [{ subnetId: 's1', ipAddress: '10.0.0.5' }],
        }),
      ),
      toDocument(
        'SecurityGroup',
        parseResource('SecurityGroup', {
          id: 'g',
          rules: [{ direction: 'ingress', protocol: 6, portRangeMin: 22, description: 'a: b # c' }],
        }),
      ),
    ];
    for (const format of ['yaml', 'json'] as const) {
      const text = renderDocuments(resources, format);
      const back = check(text);
      expect(back.problems).toEqual([]);
      expect(back.valid.map((d) => toDocument(d.kind, d.value))).toEqual(resources);
    }
    const yaml = renderDocuments(resources, 'yaml');
    expect(yaml.split('\n')[0]).toBe('kind: Subnet');
    expect(yaml.match(/^---$/gm)).toHaveLength(2);
  });

  it('renders one JSON object for a single resource, else an array', () => {
    const d = toDocument('Network', { id: 'n1' });
    expect(JSON.parse(renderDocuments([d], 'json', { single: true }))).toEqual(d);
    expect(JSON.parse(renderDocuments([d], 'json'))).toEqual([d]);
    expect(renderDocuments([], 'json')).toBe('[]\n');
    expect(renderDocuments([], 'yaml')).toBe('');
  });

  it('renders any value (bigints as strings) as JSON or YAML', () => {
    expect(JSON.parse(renderValue({ a: 1n, b: [null] }, 'json'))).toEqual({ a: '1', b: [null] });
    expect(parse(renderValue({ a: 1n }, 'yaml'))).toEqual({ a: '1' });
  });
});
