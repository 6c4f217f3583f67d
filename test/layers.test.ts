/**
 * The layering the README describes, checked on the import statements of src/: core → store →
 * runtime → wire → server / client / cli. A lower layer never imports a higher one, wire/ reaches
 * tasks only through the runtime façade, and no wire type (the MCP SDK) appears below wire/.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative, dirname } from 'node:path';
import { it } from 'node:test';

const SRC = 'src';
/** For each layer, the layers of src/ it may import (itself included). */
const ALLOWED: Record<string, string[]> = {
  core: ['core'],
  store: ['core', 'store'],
  runtime: ['core', 'store', 'runtime'],
  // Engine executors plug into runtime/'s seam; nothing in src/ imports them (they are entry points).
  executors: ['core', 'store', 'runtime', 'executors'],
  wire: ['core', 'runtime', 'wire'],
  server: ['core', 'store', 'runtime', 'wire', 'server'],
  client: ['core', 'client'],
  cli: ['core', 'client', 'server', 'cli'],
};
/** Layers that must not import the MCP SDK (no wire type below src/wire). */
const SDK_FREE = new Set(['core', 'store', 'runtime', 'executors']);

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? files(join(dir, entry.name)) : entry.name.endsWith('.ts') ? [join(dir, entry.name)] : [],
  );
}

it('each layer of src/ imports only the layers below it', () => {
  const problems: string[] = [];
  for (const file of files(SRC)) {
    const layer = relative(SRC, file).split('/')[0]!;
    if (!(layer in ALLOWED)) continue; // src/index.ts: the barrel of everything
    const source = readFileSync(file, 'utf8');
    const specifiers = [
      ...source.matchAll(/^\s*(?:import|export)\b[^'"]*?from\s+'([^']+)'/gm),
      ...source.matchAll(/\bimport\(\s*'([^']+)'\s*\)/g), // dynamic imports
    ].map((match) => match[1]);
    for (const specifier of specifiers) {
      if (specifier!.startsWith('.')) {
        const target = relative(SRC, join(dirname(file), specifier!)).split('/')[0]!;
        if (target.startsWith('..')) problems.push(`${file}: imports ${specifier} from outside src/`);
        else if (target in ALLOWED && !ALLOWED[layer]!.includes(target)) problems.push(`${file} (${layer}) imports ${specifier} (${target})`);
      } else if (SDK_FREE.has(layer) && specifier!.startsWith('@modelcontextprotocol/')) {
        problems.push(`${file} (${layer}) imports the MCP SDK (${specifier})`);
      }
    }
  }
  assert.deepEqual(problems, []);
});

/** Each file of src/ with the files of src/ it imports (static and dynamic, type-only imports included). */
function importGraph(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const file of files(SRC)) {
    const source = readFileSync(file, 'utf8');
    const specifiers = [...source.matchAll(/^\s*(?:import|export)\b[^'"]*?from\s+'([^']+)'/gm), ...source.matchAll(/\bimport\(\s*'([^']+)'\s*\)/g)].map(
      (match) => match[1]!,
    );
    graph.set(
      file,
      specifiers.filter((s) => s.startsWith('.')).map((s) => join(dirname(file), s).replace(/\.js$/, '.ts')),
    );
  }
  return graph;
}

it('src/ has no import cycle', () => {
  const graph = importGraph();
  const cycles: string[] = [];
  const state = new Map<string, 'open' | 'done'>();
  const visit = (file: string, path: string[]) => {
    if (state.get(file) === 'done') return;
    if (state.get(file) === 'open') return void cycles.push([...path.slice(path.indexOf(file)), file].join(' → '));
    state.set(file, 'open');
    for (const target of graph.get(file) ?? []) visit(target, [...path, file]);
    state.set(file, 'done');
  };
  for (const file of graph.keys()) visit(file, []);
  assert.deepEqual(cycles, []);
});

it('each protocol version owns its code: neither version folder imports the other, shared wire code imports neither', () => {
  const versions = ['2025-11-25', '2026-07-28'];
  /** The wire modules that compose both versions (and may import both). */
  const composers = new Set(['src/wire/mcp-tasks.ts', 'src/wire/fast-path.ts', 'src/wire/index.ts']);
  const problems: string[] = [];
  const versionOf = (file: string) => versions.find((v) => file.startsWith(`src/wire/${v}/`));
  for (const [file, targets] of importGraph()) {
    if (!file.startsWith('src/wire/') || composers.has(file)) continue;
    const own = versionOf(file);
    for (const target of targets) {
      const other = versionOf(target);
      if (other && other !== own) problems.push(`${file} (${own ?? 'shared'}) imports ${target} (${other})`);
    }
  }
  assert.deepEqual(problems, []);
  for (const version of versions) assert.ok(files(`src/wire/${version}`).length > 0, `src/wire/${version}/ exists`);
});
