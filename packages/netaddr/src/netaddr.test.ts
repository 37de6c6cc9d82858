import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  cidrContains,
  cidrContainsCidr,
  cidrsOverlap,
  formatCidr,
  formatIP,
  InvalidAddressError,
  isUnicastMac,
  normalizeIP,
  normalizeMac,
  nthAddress,
  parseCidr,
  parseIP,
  subnetsOf,
  lastAddress,
} from './index.js';

describe('parseIP / formatIP', () => {
  it.each([
    ['10.0.0.1', '10.0.0.1'],
    ['0.0.0.0', '0.0.0.0'],
    ['255.255.255.255', '255.255.255.255'],
    ['2001:DB8:0:0:0:0:0:1', '2001:db8::1'],
    ['::', '::'],
    ['::1', '::1'],
    ['fe80:0:0:0:1:0:0:0', 'fe80::1:0:0:0'],
    ['fe80:0:0:1:0:0:0:0', 'fe80:0:0:1::'],
    ['2001:db8:0:1:0:0:0:1', '2001:db8:0:1::1'],
    ['2001:0:0:1:0:0:0:1', '2001:0:0:1::1'],
    ['::ffff:10.1.2.3', '::ffff:a01:203'],
    ['1:2:3:4:5:6:7:8', '1:2:3:4:5:6:7:8'],
    ['1:0:3:4:5:6:7:8', '1:0:3:4:5:6:7:8'],
  ])('%s → %s', (input, out) => {
    expect(normalizeIP(input)).toBe(out);
  });

  it.each([
    '',
    '1.2.3',
    '1.2.3.4.5',
    '256.0.0.1',
    '01.2.3.4',
    '1.2.3.-1',
    ':::',
    '1::2::3',
    '1:2:3:4:5:6:7:8:9',
    'g::1',
    'fe80::1%eth0',
    '1:2:3:4:5:6:7::8',
  ])('rejects %j with a typed error', (input) => {
    expect(() => parseIP(input)).toThrow(InvalidAddressError);
  });

  it('round-trips any address (property)', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: (1n << 128n) - 1n }), (v) => {
        const a = { family: 6 as const, value: v };
        expect(parseIP(formatIP(a))).toEqual(a);
      }),
    );
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: (1n << 32n) - 1n }), (v) => {
        const a = { family: 4 as const, value: v };
        expect(parseIP(formatIP(a))).toEqual(a);
      }),
    );
  });
});

describe('CIDR', () => {
  it('parses strictly by default and names the network when host bits are set', () => {
    expect(formatCidr(parseCidr('10.0.0.0/24'))).toBe('10.0.0.0/24');
    expect(() => parseCidr('10.0.0.1/24')).toThrow(/host bits set \(network is 10.0.0.0\/24\)/);
    expect(formatCidr(parseCidr('10.0.0.1/24', { strict: false }))).toBe('10.0.0.0/24');
    expect(() => parseCidr('10.0.0.0/33')).toThrow(InvalidAddressError);
    expect(() => parseCidr('10.0.0.0')).toThrow(InvalidAddressError);
    expect(formatCidr(parseCidr('2001:db8::/64'))).toBe('2001:db8::/64');
  });

  it('contains, overlaps, nth, last', () => {
    const c = parseCidr('10.1.0.0/16');
    expect(cidrContains(c, parseIP('10.1.255.255'))).toBe(true);
    expect(cidrContains(c, parseIP('10.2.0.0'))).toBe(false);
    expect(cidrContains(c, parseIP('::1'))).toBe(false);
    expect(cidrContainsCidr(c, parseCidr('10.1.2.0/24'))).toBe(true);
    expect(cidrContainsCidr(parseCidr('10.1.2.0/24'), c)).toBe(false);
    expect(cidrsOverlap(parseCidr('10.1.2.0/24'), c)).toBe(true);
    expect(cidrsOverlap(parseCidr('10.2.0.0/24'), c)).toBe(false);
    expect(formatIP(nthAddress(c, 1n))).toBe('10.1.0.1');
    expect(formatIP(lastAddress(c))).toBe('10.1.255.255');
    expect(() => nthAddress(parseCidr('10.0.0.0/30'), 4n)).toThrow(RangeError);
  });

  it('splits into sub-networks', () => {
    const blocks = [...subnetsOf(parseCidr('10.0.0.0/24'), 26)].map(formatCidr);
    expect(blocks).toEqual(['10.0.0.0/26', '10.0.0.64/26', '10.0.0.128/26', '10.0.0.192/26']);
    expect([...subnetsOf(parseCidr('fd00::/120'), 122)].map(formatCidr)).toEqual([
      'fd00::/122',
      'fd00::40/122',
      'fd00::80/122',
      'fd00::c0/122',
    ]);
  });
});

describe('MAC', () => {
  it('normalises the common spellings', () => {
    expect(normalizeMac('AA:BB:CC:DD:EE:0F')).toBe('aa:bb:cc:dd:ee:0f');
    expect(normalizeMac('aa-bb-cc-dd-ee-0f')).toBe('aa:bb:cc:dd:ee:0f');
    expect(normalizeMac('aabb.ccdd.ee0f')).toBe('aa:bb:cc:dd:ee:0f');
    expect(normalizeMac('aabbccddee0f')).toBe('aa:bb:cc:dd:ee:0f');
    expect(() => normalizeMac('aa:bb:cc:dd:ee')).toThrow(/invalid MAC/);
    expect(() => normalizeMac('aa:bb-cc:dd:ee:ff')).toThrow(/invalid MAC/);
    expect(isUnicastMac('fa:16:3e:00:00:01')).toBe(true);
    expect(isUnicastMac('01:00:5e:00:00:01')).toBe(false);
  });
});
