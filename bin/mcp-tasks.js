#!/usr/bin/env node
// The `mcp-tasks` command. Installed from the registry or a tarball, it runs the built CLI (dist/).
// In a clone of the repository (src/ is there, tsx is a dev dependency) it runs the sources, so a
// clone needs no build step — the package has no install script — and never runs a stale build.
import { existsSync } from 'node:fs';

const source = new URL('../src/cli/main.ts', import.meta.url);
if (existsSync(source)) {
  const { register } = await import('tsx/esm/api');
  register();
  await import(source.href);
} else {
  await import(new URL('../dist/src/cli/main.js', import.meta.url).href);
}
