export class InvalidMacError extends Error {
  readonly code = 'INVALID_MAC';
  constructor(readonly input: string) {
    super(`invalid MAC address '${input}'`);
    this.name = 'InvalidMacError';
  }
}

/** Accepts `aa:bb:cc:dd:ee:ff`, `AA-BB-…`, `aabb.ccdd.eeff`, `aabbccddeeff`; returns lowercase colon form. */
export function normalizeMac(input: string): string {
  const hex = input.replace(/[:.-]/g, '');
  if (!/^[0-9a-fA-F]{12}$/.test(hex)) throw new InvalidMacError(input);
  const sep = input.replace(/[0-9a-fA-F]/g, '');
  if (sep.length && !/^(:{5}|-{5}|\.{2})$/.test(sep)) throw new InvalidMacError(input);
  return hex.toLowerCase().match(/../g)!.join(':');
}

export function isMac(input: string): boolean {
  try {
    normalizeMac(input);
    return true;
  } catch {
    return false;
  }
}

/** Multicast/broadcast MACs (low bit of the first octet) can never be a VM's own. */
export function isUnicastMac(mac: string): boolean {
  return (parseInt(normalizeMac(mac).slice(0, 2), 16) & 1) === 0;
}
