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
  wire: ['core', 'runtime', 'wire'],
  server: ['core', 'store', 'runtime', 'wire', 'server'],
  client: ['core', 'client'],
  cli: ['core', 'client', 'server', 'cli'],
};
/** Layers that must not import the MCP SDK (no wire type below src/wire). */
const SDK_FREE = new Set(['core', 'store', 'runtime']);

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
