/** IP protocol names accepted in security group rules, with their numbers (IANA). */
export const PROTOCOL_NUMBERS: Readonly<Record<string, number>> = {
  icmp: 1,
  igmp: 2,
  ipip: 4,
  tcp: 6,
  egp: 8,
  udp: 17,
  dccp: 33,
  ipv6: 41,
  rsvp: 46,
  gre: 47,
  esp: 50,
  ah: 51,
  icmpv6: 58,
  ospf: 89,
  pim: 103,
  vrrp: 112,
  l2tp: 115,
  sctp: 132,
  udplite: 136,
};

/** Aliases people use (Neutron accepts `ipv6-icmp` and `icmpv6`). */
export const PROTOCOL_ALIASES: Readonly<Record<string, string>> = {
  'ipv6-icmp': 'icmpv6',
  icmp6: 'icmpv6',
  ipv6icmp: 'icmpv6',
  ipencap: 'ipip',
};

/** Protocols whose rules may name ports. */
export const PORT_PROTOCOLS = new Set(['tcp', 'udp', 'sctp', 'udplite', 'dccp']);

export function protocolName(numberOrName: string | number): string | undefined {
  if (typeof numberOrName === 'number') {
    return Object.entries(PROTOCOL_NUMBERS).find(([, n]) => n === numberOrName)?.[0];
  }
  const lower = numberOrName.toLowerCase();
  const name = PROTOCOL_ALIASES[lower] ?? lower;
  return name in PROTOCOL_NUMBERS ? name : undefined;
}

export function protocolNumber(nameOrNumber: string | number): number | undefined {
  if (typeof nameOrNumber === 'number') return nameOrNumber;
  const name = protocolName(nameOrNumber);
  return name === undefined ? undefined : PROTOCOL_NUMBERS[name];
}
