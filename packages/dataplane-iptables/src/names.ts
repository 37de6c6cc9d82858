import { InvalidNameError } from '@calyx/dataplane';

/** iptables chain names: at most 28 characters (XT_EXTENSION_MAXNAMELEN - 1) of a safe alphabet. */
export function assertChainName(name: string): string {
  if (typeof name !== 'string' || !/^[A-Za-z0-9_.-]{1,28}$/.test(name) || name.startsWith('-'))
    throw new InvalidNameError('iptables chain', String(name), '1-28 characters of [A-Za-z0-9_.-]');
  return name;
}

/** ipset names: at most 31 characters (IPSET_MAXNAMELEN - 1) of a safe alphabet. */
export function assertIpsetName(name: string): string {
  if (typeof name !== 'string' || !/^[A-Za-z0-9_.-]{1,31}$/.test(name) || name.startsWith('-'))
    throw new InvalidNameError('ipset', String(name), '1-31 characters of [A-Za-z0-9_.-]');
  return name;
}

/**
 * A rule is one line of iptables-restore input: no line breaks, no NUL, and double quotes only
 * around a comment (iptables-restore's own quoting), which is all our rules use.
 */
export function assertRule(chain: string, rule: string): string {
  const quoted = typeof rule === 'string' && rule.includes('"');
  const unquoted = quoted ? rule.replace(/--comment "[^"\n]*"/g, '') : rule;
  if (typeof rule !== 'string' || /[\n\r\0]/.test(rule) || unquoted.includes('"'))
    throw new InvalidNameError(
      `rule in ${chain}`,
      String(rule),
      'one line, double quotes only around a --comment',
    );
  return rule;
}
