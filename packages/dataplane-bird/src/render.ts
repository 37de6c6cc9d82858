import { createHash } from 'node:crypto';
import { BirdConfigError } from './errors.js';
import type { BirdConfig, BirdPeer, ExportPolicy } from './model.js';

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
const IPV6 = /^[0-9a-fA-F:.]{2,45}$/;
const CIDR4 =
  /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}\/([0-9]|[12]\d|3[0-2])$/;
const CIDR6 = /^[0-9a-fA-F:.]{2,45}\/([0-9]|[1-9]\d|1[01]\d|12[0-8])$/;
const PASSWORD = /^[\x21\x23-\x5b\x5d-\x7e]{1,80}$/;

function checkAddress(what: string, a: string): void {
  if (!(IPV4.test(a) || (a.includes(':') && IPV6.test(a))))
    throw new BirdConfigError(`${what} '${a}' is not an IP address`);
}

function checkAs(what: string, n: number): void {
  if (!Number.isInteger(n) || n < 1 || n > 4294967295)
    throw new BirdConfigError(`${what} ${n} is not an AS number`);
}

/** BIRD symbols: [A-Za-z_][A-Za-z0-9_]*. Names are sanitised and, when that changed them, suffixed with a hash so they stay unique. */
export function protocolName(prefix: string, name: string): string {
  const clean = name.replace(/[^A-Za-z0-9_]/g, '_');
  const base = `${prefix}_${clean}`.slice(0, 40);
  if (clean === name && base.length === prefix.length + 1 + name.length) return base;
  return `${base}_${createHash('sha256').update(name).digest('hex').slice(0, 6)}`;
}

function peerProtocolName(p: BirdPeer): string {
  return protocolName(p.family === 4 ? 'bgp4' : 'bgp6', p.name);
}

function quote(s: string): string {
  // Descriptions are free text: keep them printable and quote-free.
  return `"${s.replace(/[^\x20-\x7e]/g, '?').replace(/["\\]/g, "'")}"`;
}

function prefixSet(prefixes: readonly string[], family: 4 | 6): string {
  const mine = prefixes.filter((p) => (family === 4 ? CIDR4.test(p) : p.includes(':')));
  for (const p of mine)
    if (family === 6 && !CIDR6.test(p)) throw new BirdConfigError(`'${p}' is not an IPv6 prefix`);
  return mine.length ? `net ~ [ ${mine.map((p) => `${p}+`).join(', ')} ]` : 'false';
}

function exportFilter(policy: ExportPolicy, family: 4 | 6): string {
  const local = `proto = "kernel${family}"`;
  const lines = ['if net.len = 0 then reject;'];
  switch (policy.kind) {
    case 'none':
      lines.push('reject;');
      break;
    case 'endpoints':
      lines.push(`if ${local} then accept;`, 'reject;');
      break;
    case 'endpoints-and-reflected':
      lines.push(`if ${local} then accept;`, 'if source = RTS_BGP then accept;', 'reject;');
      break;
    case 'prefixes':
      for (const p of policy.prefixes)
        if (!CIDR4.test(p) && !CIDR6.test(p)) throw new BirdConfigError(`'${p}' is not a prefix`);
      lines.push(`if ${local} && ${prefixSet(policy.prefixes, family)} then accept;`, 'reject;');
      break;
  }
  return `filter { ${lines.join(' ')} }`;
}

function importFilter(p: BirdPeer): string {
  if (p.import === 'none') return 'none';
  return p.acceptDefault ? 'all' : 'filter { if net.len = 0 then reject; accept; }';
}

function renderPeer(p: BirdPeer, config: BirdConfig): string {
  checkAddress(`peer ${p.name} address`, p.neighborAddress);
  if (p.localAddress) checkAddress(`peer ${p.name} local address`, p.localAddress);
  checkAs(`peer ${p.name} local AS`, p.localAs);
  checkAs(`peer ${p.name} AS`, p.peerAs);
  if ((p.family === 6) !== p.neighborAddress.includes(':'))
    throw new BirdConfigError(
      `peer ${p.name}: family ${p.family} does not match ${p.neighborAddress}`,
    );
  if (p.password !== undefined && !PASSWORD.test(p.password))
    throw new BirdConfigError(
      `peer ${p.name}: password must be 1-80 printable characters without quotes, backslashes or spaces`,
    );
  if (p.clusterId !== undefined && !IPV4.test(p.clusterId))
    throw new BirdConfigError(`peer ${p.name}: cluster id '${p.clusterId}' is not dotted 32-bit`);
  const t = config.timers;
  const lines = [
    `protocol bgp ${peerProtocolName(p)} {`,
    ...(p.description ? [`  description ${quote(p.description)};`] : []),
    p.localAddress ? `  local ${p.localAddress} as ${p.localAs};` : `  local as ${p.localAs};`,
    `  neighbor ${p.neighborAddress} as ${p.peerAs};`,
    ...(p.direct ? ['  direct;'] : ['  multihop;']),
    ...(p.password ? [`  password "${p.password}";`] : []),
    ...(p.routeReflectorClient ? ['  rr client;'] : []),
    ...(p.routeReflectorClient && p.clusterId ? [`  rr cluster id ${p.clusterId};`] : []),
    `  graceful restart ${p.gracefulRestart ? 'on' : 'off'};`,
    ...(p.gracefulRestart ? [`  graceful restart time ${t.gracefulRestartSeconds};`] : []),
    `  connect delay time ${t.connectRetrySeconds};`,
    `  connect retry time ${t.connectRetrySeconds};`,
    `  error wait time ${t.connectRetrySeconds}, ${Math.max(t.connectRetrySeconds, 60)};`,
    `  hold time ${t.holdSeconds};`,
    `  ipv${p.family} {`,
    `    import ${importFilter(p)};`,
    `    export ${exportFilter(p.export, p.family)};`,
    '  };',
    '}',
  ];
  return lines.join('\n');
}

function renderKernel(family: 4 | 6, config: BirdConfig): string {
  const learn = config.endpointRouteProtocol;
  if (learn !== null && (!Number.isInteger(learn) || learn < 1 || learn > 255))
    throw new BirdConfigError(`route protocol ${learn} is not 1..255`);
  const importRule =
    learn === null
      ? 'none'
      : `filter { if krt_source = ${learn} && net.len > 0 then accept; reject; }`;
  const exportRule = config.installRoutes
    ? 'filter { if source = RTS_BGP then accept; reject; }'
    : 'none';
  return [
    `protocol kernel kernel${family} {`,
    `  ipv${family} {`,
    `    import ${importRule};`,
    `    export ${exportRule};`,
    '  };',
    ...(learn !== null ? ['  learn;'] : []),
    '  scan time 10;',
    '  graceful restart on;',
    '}',
  ].join('\n');
}

/** Renders the config. Pure and deterministic: the same model gives the same bytes. */
export function renderBirdConfig(config: BirdConfig): string {
  if (!IPV4.test(config.routerId))
    throw new BirdConfigError(`router id '${config.routerId}' is not dotted 32-bit`);
  const names = new Set<string>();
  for (const p of config.peers) {
    const n = peerProtocolName(p);
    if (names.has(n)) throw new BirdConfigError(`two peers map to the protocol name ${n}`);
    names.add(n);
  }
  const families = new Set<4 | 6>([4, ...config.peers.map((p) => p.family)]);
  if (config.logFile !== undefined && !/^\/[A-Za-z0-9_./-]+$/.test(config.logFile))
    throw new BirdConfigError(`log file '${config.logFile}' is not a plain absolute path`);
  const target = config.logFile ? `"${config.logFile}"` : 'stderr';
  const log =
    config.logLevel === 'none'
      ? `log ${target} { error, fatal };`
      : config.logLevel === 'debug'
        ? `log ${target} all;\ndebug protocols all;`
        : `log ${target} { info, remote, warning, error, auth, fatal, bug };`;
  const sorted = [...config.peers].sort((a, b) =>
    peerProtocolName(a) < peerProtocolName(b) ? -1 : 1,
  );
  return [
    '# Generated by Calyx (@calyx/dataplane-bird). Do not edit: it is rewritten on every change.',
    `router id ${config.routerId};`,
    log,
    'timeformat protocol iso long;',
    '',
    'protocol device {',
    '  scan time 10;',
    '}',
    '',
    ...[...families].sort().map((f) => renderKernel(f, config) + '\n'),
    ...sorted.map((p) => renderPeer(p, config) + '\n'),
  ].join('\n');
}

/** The BIRD protocol name a peer gets (for matching status to peers). */
export function birdProtocolNameOf(peer: Pick<BirdPeer, 'name' | 'family'>): string {
  return peerProtocolName(peer as BirdPeer);
}
