// ESLint plugin with one rule, `calyx/package-boundaries`, enforcing boundaries.json:
//  - a package imports only the @calyx packages its row allows (so a library importing an
//    application fails, and so does any upward import);
//  - no deep imports: `@calyx/x/<path>` only where x's package.json "exports" lists "./<path>",
//    and never `@calyx/x/src/...`;
//  - no relative import that leaves the package.
import { readFileSync, existsSync } from 'node:fs';
import { dirname, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const table = JSON.parse(readFileSync(join(here, 'boundaries.json'), 'utf8')).packages;
const workspaceRoot = resolve(here, '..', '..');

function allowedDeps(name, isTest) {
  const row = table[name];
  if (!row) return null;
  const out = new Set();
  for (const d of row.deps) {
    if (d === '*libraries') {
      for (const [n, r] of Object.entries(table))
        if (r.kind === 'library' && n !== name) out.add(n);
    } else out.add(d);
  }
  if (isTest) {
    for (const d of row.testOnly ?? []) out.add(d);
    for (const [n, r] of Object.entries(table)) if (r.kind === 'tool') out.add(n);
  }
  return out;
}

function ownPackage(filename) {
  const rel = filename.startsWith(workspaceRoot + sep)
    ? filename.slice(workspaceRoot.length + 1)
    : null;
  if (!rel) return null;
  const parts = rel.split(sep);
  if ((parts[0] === 'packages' || parts[0] === 'tools') && parts[1]) {
    return { name: parts[1], dir: join(workspaceRoot, parts[0], parts[1]) };
  }
  return null;
}

const exportsCache = new Map();
function exportedSubpaths(pkgName) {
  if (!exportsCache.has(pkgName)) {
    let subs = new Set();
    for (const base of ['packages', 'tools']) {
      const file = join(workspaceRoot, base, pkgName, 'package.json');
      if (existsSync(file)) {
        const pkg = JSON.parse(readFileSync(file, 'utf8'));
        subs = new Set(Object.keys(pkg.exports ?? { '.': '' }));
        break;
      }
    }
    exportsCache.set(pkgName, subs);
  }
  return exportsCache.get(pkgName);
}

const packageBoundaries = {
  meta: {
    type: 'problem',
    docs: { description: 'Enforce the Calyx package dependency table and public entry points' },
    schema: [],
    messages: {
      unknownPackage: "Package '{{from}}' has no row in tools/eslint-plugin-calyx/boundaries.json.",
      notAllowed:
        "'{{from}}' ({{fromKind}}) may not import '@calyx/{{to}}' ({{toKind}}): not in its row of the dependency table (allowed: {{allowed}}).",
      libraryImportsApplication:
        "Library '{{from}}' may not import application '@calyx/{{to}}': libraries never depend on applications.",
      deepImport:
        "Deep import '{{spec}}': import only a package's public entry points (its package.json \"exports\").",
      leavesPackage:
        "Relative import '{{spec}}' leaves package '{{from}}': import '@calyx/<package>' instead.",
    },
  },
  create(context) {
    const filename = context.filename ?? context.getFilename();
    const own = ownPackage(filename);
    if (!own) return {};
    const isTest =
      /\.(int\.test|test|bench)\.ts$/.test(filename) || /[\\/]src[\\/]testing[\\/]/.test(filename);
    const allowed = allowedDeps(own.name, isTest);

    function check(node, spec) {
      if (typeof spec !== 'string') return;
      if (spec.startsWith('.')) {
        const target = resolve(dirname(filename), spec);
        if (!(target + sep).startsWith(own.dir + sep)) {
          context.report({ node, messageId: 'leavesPackage', data: { spec, from: own.name } });
        }
        return;
      }
      const m = /^@calyx\/([^/]+)(?:\/(.*))?$/.exec(spec);
      if (!m) return;
      const [, to, sub] = m;
      if (to === 'eslint-plugin') return;
      if (sub !== undefined) {
        const subs = exportedSubpaths(to);
        if (sub.startsWith('src/') || sub === 'src' || !subs.has(`./${sub}`)) {
          context.report({ node, messageId: 'deepImport', data: { spec } });
          return;
        }
      }
      if (to === own.name) return;
      if (!allowed) {
        context.report({ node, messageId: 'unknownPackage', data: { from: own.name } });
        return;
      }
      if (allowed.has(to)) return;
      const fromKind = table[own.name]?.kind;
      const toKind = table[to]?.kind ?? 'unknown';
      if (fromKind === 'library' && toKind === 'application') {
        context.report({
          node,
          messageId: 'libraryImportsApplication',
          data: { from: own.name, to },
        });
        return;
      }
      context.report({
        node,
        messageId: 'notAllowed',
        data: { from: own.name, fromKind, to, toKind, allowed: [...allowed].join(', ') || 'none' },
      });
    }

    return {
      ImportDeclaration: (node) => check(node.source, node.source.value),
      ExportNamedDeclaration: (node) => node.source && check(node.source, node.source.value),
      ExportAllDeclaration: (node) => check(node.source, node.source.value),
      ImportExpression: (node) =>
        node.source.type === 'Literal' && check(node.source, node.source.value),
    };
  },
};

export const boundaries = table;
export default {
  meta: { name: '@calyx/eslint-plugin', version: '0.1.0' },
  rules: { 'package-boundaries': packageBoundaries },
};
