/**
 * Rule hashes, as Felix does: each rule of our chains carries `cx:<hash>` in its comment, the
 * hash covering the chain name, the rule and the previous rule's hash. Comparing a chain's
 * hash list with the desired one tells whether it must be rewritten, whatever iptables-save
 * does to the rule's text. A fast non-cryptographic 64-bit hash: it detects drift, it does not
 * defend against an adversary who can already write the host's rules.
 */
export function hash64(s: string): string {
  mix(0x811c9dc5, 0x01000193, s);
  return hex(lane1, lane2);
}

// The two lanes of the last mix(): module state instead of a tuple per rule (less garbage).
let lane1 = 0;
let lane2 = 0;

/** Two 32-bit lanes (FNV-1a and a murmur-style multiply) over `s`, from a seed. */
function mix(h1: number, h2: number, s: string): void {
  h2 ^= s.length;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 0x01000193);
    h2 = Math.imul(h2 ^ c, 0x5bd1e995);
    h2 ^= h2 >>> 15;
  }
  lane1 = fin(h1);
  lane2 = fin(h2);
}

function fin(h: number): number {
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

const BYTE = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));
/** 16 hex digits; a table is several times faster than toString(16) + padStart here. */
const hex = (a: number, b: number): string =>
  BYTE[a >>> 24]! +
  BYTE[(a >>> 16) & 255]! +
  BYTE[(a >>> 8) & 255]! +
  BYTE[a & 255]! +
  BYTE[b >>> 24]! +
  BYTE[(b >>> 16) & 255]! +
  BYTE[(b >>> 8) & 255]! +
  BYTE[b & 255]!;

/** The hash of every rule of a chain, each chained to the one before (no string concatenation). */
export function ruleHashes(chain: string, rules: readonly string[]): string[] {
  const out: string[] = new Array<string>(rules.length);
  mix(0x811c9dc5, 0x01000193, chain);
  for (let i = 0; i < rules.length; i++) {
    mix(lane1 ^ 0x9e3779b9, lane2 ^ 0x7f4a7c15, rules[i]!);
    out[i] = hex(lane1, lane2);
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
  const m = rule.includes('--comment') ? COMMENT.exec(rule) : null;
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
