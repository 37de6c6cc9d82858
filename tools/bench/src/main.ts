// `npm run bench [-- --only <substr>[,<substr>]] [--quick] [--list]`
// Runs every packages/*/src/**/*.bench.ts suite, then writes docs/benchmarks/.
import {
  mkdirSync,
  readFileSync,
  readdirSync,
  writeFileSync,
  existsSync,
  unlinkSync,
} from 'node:fs';
import { cpus, totalmem, release, platform } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { meetsTarget } from './measure.js';
import { mergeResults, renderMarkdown, renderSvg, svgFileName, fmt } from './report.js';
import type { BenchReport, BenchmarkResult, BenchmarkSuite } from './types.js';

const root = resolve(import.meta.dirname, '..', '..', '..');
const outDir = join(root, 'docs', 'benchmarks');

function findBenchFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory() && e.name !== 'node_modules' && e.name !== 'dist')
      out.push(...findBenchFiles(p));
    else if (e.isFile() && e.name.endsWith('.bench.ts')) out.push(p);
  }
  return out;
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      only: { type: 'string', multiple: true },
      quick: { type: 'boolean', default: false },
      list: { type: 'boolean', default: false },
    },
  });
  const filters = (values.only ?? []).flatMap((s) => s.split(',')).filter(Boolean);
  const files = readdirSync(join(root, 'packages'))
    .flatMap((p) =>
      existsSync(join(root, 'packages', p, 'src'))
        ? findBenchFiles(join(root, 'packages', p, 'src'))
        : [],
    )
    .sort();
  const suites: { file: string; suite: BenchmarkSuite }[] = [];
  for (const file of files) {
    const mod = (await import(pathToFileURL(file).href)) as { suite?: BenchmarkSuite };
    if (!mod.suite) throw new Error(`${relative(root, file)} does not export 'suite'`);
    suites.push({ file, suite: mod.suite });
  }
  const chosen = suites.filter(
    ({ suite, file }) =>
      filters.length === 0 || filters.some((f) => suite.id.includes(f) || file.includes(f)),
  );
  if (values.list) {
    for (const { suite, file } of suites)
      console.log(`${suite.id.padEnd(28)} ${suite.title}  (${relative(root, file)})`);
    return 0;
  }
  if (chosen.length === 0) {
    console.error(`no benchmark suite matches ${filters.join(', ')}; --list shows them`);
    return 2;
  }
  const ac = new AbortController();
  process.once('SIGINT', () => ac.abort());
  const fresh: BenchmarkResult[] = [];
  let i = 0;
  for (const { suite } of chosen) {
    i++;
    if (suite.needsRoot && process.getuid?.() !== 0) {
      console.error(
        `[${i}/${chosen.length}] ${suite.id}: needs root (network namespaces) — not run`,
      );
      return 1;
    }
    const t0 = performance.now();
    console.log(`[${i}/${chosen.length}] ${suite.id}: ${suite.title}`);
    const results = await suite.run({
      quick: values.quick ?? false,
      signal: ac.signal,
      log: (m) => console.log(`    ${m}`),
    });
    for (const r of results) {
      console.log(
        `    ${r.id}: ${fmt(r.value)} ${r.unit} vs ${fmt(r.baseline.value)} (${r.baseline.name}) → ${fmt(r.ratio)}×${r.target === null && r.absoluteTarget === undefined ? '' : meetsTarget(r) ? ' (target met)' : ' (TARGET MISSED)'}`,
      );
    }
    console.log(`    done in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    fresh.push(...results);
  }
  mkdirSync(outDir, { recursive: true });
  const resultsFile = join(outDir, 'results.json');
  const previous = existsSync(resultsFile)
    ? (JSON.parse(readFileSync(resultsFile, 'utf8')) as BenchReport).results
    : [];
  const results = mergeResults(values.quick ? [] : previous, fresh);
  const report: BenchReport = {
    date: new Date().toISOString(),
    machine: {
      cpu: cpus()[0]?.model ?? 'unknown',
      cores: cpus().length,
      memoryGiB: Math.round(totalmem() / 2 ** 30),
      kernel: release(),
      node: process.version,
      platform: platform(),
    },
    results,
  };
  if (values.quick) {
    console.log('--quick: smoke run, docs/benchmarks/ left unchanged');
    return 0;
  }
  writeFileSync(resultsFile, JSON.stringify(report, null, 2) + '\n');
  const keep = new Set(results.map((r) => svgFileName(r.id)));
  for (const f of readdirSync(outDir))
    if (f.endsWith('.svg') && !keep.has(f)) unlinkSync(join(outDir, f));
  for (const r of results) writeFileSync(join(outDir, svgFileName(r.id)), renderSvg(r));
  writeFileSync(join(outDir, 'README.md'), renderMarkdown(report));
  const missed = results.filter((r) => !meetsTarget(r));
  console.log(
    `wrote ${relative(root, resultsFile)} and the report (${results.length} results${missed.length ? `, ${missed.length} missing their target: ${missed.map((r) => r.id).join(', ')}` : ''})`,
  );
  return 0;
}

process.exitCode = await main();
