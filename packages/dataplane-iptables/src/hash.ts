/**
 * Rule hashes, as Felix does: each rule of our chains carries `cx:<hash>` in its comment, the
 * hash covering the chain name, the rule and the previous rule's hash. Comparing a chain's
 * hash list with the desired one tells whether it must be rewritten, whatever iptables-save
 * does to the rule's text. A fast non-cryptographic 64-bit hash: it detects drift, it does not
 * defend against an adversary who can already write the host's rules.
 */
export function hash64(s: string): string {
  let h1 = 0x811c9dc5;
  let h2 = 0x01000193 ^ s.length;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 0x01000193);
    h2 = Math.imul(h2 ^ c, 0x5bd1e995);
    h2 ^= h2 >>> 15;
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 0x85ebca6b);
  h1 = Math.imul(h1 ^ (h1 >>> 13), 0xc2b2ae35);
  h1 ^= h1 >>> 16;
  h2 = Math.imul(h2 ^ (h2 >>> 16), 0x85ebca6b);
  h2 = Math.imul(h2 ^ (h2 >>> 13), 0xc2b2ae35);
  h2 ^= h2 >>> 16;
  return (h1 >>> 0).toString(16).padStart(8, '0') + (h2 >>> 0).toString(16).padStart(8, '0');
}

/** The hash of every rule of a chain, each chained to the one before. */
export function ruleHashes(chain: string, rules: readonly string[]): string[] {
  const out: string[] = new Array<string>(rules.length);
  let prev = chain;
  for (let i = 0; i < rules.length; i++) {
    prev = hash64(`${prev}\u0001${rules[i]}`);
    out[i] = prev;
  }
  return out;
}

/** The hash of a hook rule in a built-in chain. */
export function hookHash(table: string, builtin: string, rule: string): string {
  return hash64(`hook\u0001${table}\u0001${builtin}\u0001${rule}`);
}

export const HASH_PREFIX = 'cx:';
const COMMENT = /(?:^|\s)-m comment --comment (?:"([^"]*)"|(\S+))/;

/**
 * The rule with our hash as its only comment (iptables-nft keeps one comment per rule): an
 * existing comment is kept after the hash, and the comment comes first in the rule.
 */
export function withHash(rule: string, hash: string): string {
  const m = COMMENT.exec(rule);
  if (!m) return `-m comment --comment "${HASH_PREFIX}${hash}" ${rule}`;
  const text = m[1] ?? m[2] ?? '';
  const rest = (rule.slice(0, m.index) + rule.slice(m.index + m[0].length)).trim();
  return `-m comment --comment "${HASH_PREFIX}${hash} ${text}" ${rest}`;
}

const HASH_IN_RULE = /--comment "?cx:([0-9a-f]{16})/;

/** The hash a saved rule carries, or '' when it has none (not written by us, or altered). */
export function hashOf(savedRule: string): string {
  return HASH_IN_RULE.exec(savedRule)?.[1] ?? '';
}
