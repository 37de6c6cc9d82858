// Shared tsup config: every package builds its exported entry points (the "@calyx/source"
// condition of package.json "exports", plus "bin" sources) to ESM for Node 20.
// Declarations come from `tsc -p tsconfig.build.json`, not from tsup.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { defineConfig } from 'tsup';

const pkg = JSON.parse(readFileSync(join(process.cwd(), 'package.json'), 'utf8'));

function entries() {
  const out = {};
  for (const target of Object.values(pkg.exports ?? {})) {
    const src = typeof target === 'object' ? target['@calyx/source'] : undefined;
    const js = typeof target === 'object' ? target.import : undefined;
    if (src && js) out[js.replace(/^\.\/dist\//, '').replace(/\.js$/, '')] = src;
  }
  for (const src of Object.values(pkg.calyx?.binSources ?? {})) {
    out[src.replace(/^\.?\/?src\//, '').replace(/\.ts$/, '')] = src;
  }
  return out;
}

export default defineConfig({
  entry: entries(),
  format: ['esm'],
  target: 'node20',
  platform: 'node',
  dts: false,
  sourcemap: true,
  clean: false,
  splitting: true,
  treeshake: false,
  outDir: 'dist',
});
