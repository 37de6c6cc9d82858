#!/usr/bin/env node
// Entry point of the README's commands (`npm run demo`, `npm test`, `npm run bench`).
// Installs what the job needs (npm packages, Debian packages) when it is missing, then runs
// the job. Plain Node with no dependencies: it must work before `npm ci` has run.
import { spawnSync } from 'node:child_process';
import { existsSync, statSync, readFileSync, writeFileSync } from 'node:fs';
import { delimiter, join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const [job = 'test', ...jobArgs] = process.argv.slice(2);

// binary -> Debian package that provides it
const DEBIAN = {
  ip: 'iproute2',
  bird: 'bird2',
  birdc: 'bird2',
  dnsmasq: 'dnsmasq-base',
  iptables: 'iptables',
  'iptables-restore': 'iptables',
  ip6tables: 'iptables',
  ipset: 'ipset',
  busybox: 'busybox',
  ping: 'iputils-ping',
  dhclient: 'isc-dhcp-client',
  etcd: 'etcd-server',
  etcdctl: 'etcd-client',
  'redis-server': 'redis-server',
  'redis-cli': 'redis-tools',
};
const DATAPLANE = [
  'ip',
  'bird',
  'birdc',
  'dnsmasq',
  'iptables',
  'iptables-restore',
  'ip6tables',
  'ipset',
  'busybox',
  'ping',
];
const NEEDS = {
  demo: [...DATAPLANE, 'dhclient', 'etcd'],
  test: [...DATAPLANE, 'dhclient', 'etcd', 'etcdctl', 'redis-server', 'redis-cli'],
  bench: [...DATAPLANE, 'etcd', 'redis-server', 'redis-cli', 'python3-neutron'],
};
// Things that are not a binary on PATH: a file that proves the package is there.
const FILES = {
  'python3-neutron': ['/usr/lib/python3/dist-packages/neutron/__init__.py', 'python3-neutron'],
};

const env = {
  ...process.env,
  NX_DAEMON: 'false',
  NX_NO_CLOUD: 'true',
  NX_TUI: 'false',
  NX_SKIP_NX_CACHE: process.env.NX_SKIP_NX_CACHE ?? '',
  PATH: withSbin(process.env.PATH ?? ''),
};

function withSbin(path) {
  const parts = path.split(delimiter).filter(Boolean);
  for (const p of ['/usr/local/sbin', '/usr/sbin', '/sbin']) if (!parts.includes(p)) parts.push(p);
  return parts.join(delimiter);
}

function log(msg) {
  process.stderr.write(`[calyx] ${msg}\n`);
}

function run(argv, opts = {}) {
  const r = spawnSync(argv[0], argv.slice(1), { stdio: 'inherit', cwd: root, env, ...opts });
  if (r.error) throw r.error;
  return r.status ?? 1;
}

function must(argv, opts) {
  const code = run(argv, opts);
  if (code !== 0) {
    log(`failed (exit ${code}): ${argv.join(' ')}`);
    process.exit(code);
  }
}

function which(bin) {
  for (const dir of env.PATH.split(delimiter)) {
    const p = join(dir, bin);
    try {
      if (statSync(p).isFile()) return p;
    } catch {
      /* not here */
    }
  }
  return null;
}

function present(need) {
  if (FILES[need]) return existsSync(FILES[need][0]);
  return which(need) !== null;
}

function ensureDebianPackages(needs) {
  const missing = [
    ...new Set(needs.filter((n) => !present(n)).map((n) => FILES[n]?.[1] ?? DEBIAN[n])),
  ];
  if (missing.length === 0) return;
  if (process.getuid?.() !== 0) {
    log(
      `missing Debian packages: ${missing.join(' ')} (run as root, or: apt-get install ${missing.join(' ')})`,
    );
    process.exit(1);
  }
  log(`installing Debian packages: ${missing.join(' ')}`);
  const aptEnv = { ...env, DEBIAN_FRONTEND: 'noninteractive' };
  const install = ['apt-get', 'install', '-y', '-q', '--no-install-recommends', ...missing];
  if (run(install, { env: aptEnv }) !== 0) {
    must(['apt-get', 'update', '-q'], { env: aptEnv });
    must(install, { env: aptEnv });
  }
}

function ensureNpmPackages() {
  const lock = join(root, 'package-lock.json');
  const stampFile = join(root, 'node_modules', '.calyx-bootstrap-stamp');
  const want = existsSync(lock)
    ? `${statSync(lock).size}:${readFileSync(lock, 'utf8').length}:${hash(readFileSync(lock, 'utf8'))}`
    : 'none';
  if (existsSync(stampFile) && readFileSync(stampFile, 'utf8') === want) return;
  log('installing npm packages (npm ci)');
  must(['npm', 'ci', '--no-audit', '--no-fund']);
  writeFileSync(stampFile, want);
}

function hash(text) {
  let h = 2166136261;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 16777619) >>> 0;
  return h.toString(16);
}

const nx = (args) => ['npx', '--no-install', 'nx', ...args];

if (!NEEDS[job]) {
  log(`unknown job '${job}' (demo | test | bench)`);
  process.exit(2);
}
ensureNpmPackages();
ensureDebianPackages(NEEDS[job]);

switch (job) {
  case 'demo':
    must(nx(['run', '@calyx/demo:build', '--output-style=static']));
    process.exit(run(['node', 'packages/demo/dist/main.js', ...jobArgs]));
  case 'test':
    must(['npx', '--no-install', 'prettier', '--check', '--log-level=warn', '.']);
    must(nx(['run-many', '-t', 'build', 'lint', 'typecheck', 'test', '--output-style=static']));
    process.exit(run(nx(['run-many', '-t', 'test-int', '--parallel=1', '--output-style=stream'])));
  case 'bench':
    // Benchmarks run from sources (tsx), like the tests; nothing to build first.
    process.exit(
      run([
        'node',
        '--conditions=@calyx/source',
        '--import',
        'tsx',
        'tools/bench/src/main.ts',
        ...jobArgs,
      ]),
    );
}
