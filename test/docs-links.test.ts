/**
 * The documentation's links hold: every relative link and image in README.md and docs/**.md (the
 * generated API reference, docs/api/, excepted) points at a file or folder of the repository, and a
 * `#fragment` names a heading of its target (GitHub's anchors: see `slug`). Every guide in docs/ is
 * linked from the README, and the README's smallest server is examples/hello-task/server.ts as it
 * is (so the listing cannot drift from the file its test runs).
 *
 * No Markdown library is a dependency of this package, so the reader below is short: it skips
 * fenced code blocks and code spans, and reads inline links, images and reference definitions.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** README.md and every Markdown file under docs/ but docs/api/ (TypeDoc's output, git-ignored). */
function markdownFiles(): string[] {
  const files = [join(ROOT, 'README.md')];
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory() && path !== join(ROOT, 'docs', 'api')) walk(path);
      else if (entry.isFile() && entry.name.endsWith('.md')) files.push(path);
    }
  };
  walk(join(ROOT, 'docs'));
  return files;
}

/** The lines of `text` outside fenced code blocks (``` or ~~~), each with its 1-based number. */
function proseLines(text: string): { line: string; n: number }[] {
  const out: { line: string; n: number }[] = [];
  let fence: string | undefined;
  text.split('\n').forEach((line, i) => {
    const marker = /^\s{0,3}(`{3,}|~{3,})/.exec(line)?.[1];
    if (fence) {
      if (marker && marker[0] === fence[0] && marker.length >= fence.length && line.trim() === marker) fence = undefined;
    } else if (marker) fence = marker;
    else out.push({ line, n: i + 1 });
  });
  return out;
}

/** `line` with its code spans blanked (their text is not Markdown). */
const withoutCode = (line: string) => line.replace(/(`+)[\s\S]*?\1/g, (span) => ' '.repeat(span.length));

/**
 * GitHub's anchor for a heading (github-slugger's rules): the heading's text as rendered (code
 * spans' text kept, emphasis markers, links and HTML tags reduced to their text), lower-cased,
 * punctuation and symbols removed (letters, digits, marks, `-` and `_` stay), each space a `-`.
 */
export function slug(heading: string): string {
  const text = heading
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1')
    .replace(/<[^>]+>/g, '')
    .replace(/`/g, '')
    .replace(/(\*\*|__)(.+?)\1/g, '$2')
    .replace(/(^|\W)[*_](.+?)[*_](?=\W|$)/g, '$1$2');
  return text
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, '')
    .replace(/ /g, '-');
}

/** The anchors of a Markdown file: its ATX headings' slugs (repeats suffixed -1, -2, …) and explicit `<a id|name="…">`. */
function anchorsOf(text: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  for (const { line } of proseLines(text)) {
    const heading = /^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$/.exec(line)?.[1];
    if (heading !== undefined) {
      const base = slug(heading);
      const count = seen.get(base) ?? 0;
      seen.set(base, count + 1);
      anchors.add(count === 0 ? base : `${base}-${count}`);
    }
    for (const match of line.matchAll(/<a\s+(?:id|name)="([^"]+)"/g)) anchors.add(match[1]!);
  }
  return anchors;
}

/** Every link target in the prose of `text`: inline links and images, and reference definitions. */
function linksOf(text: string): { target: string; n: number }[] {
  const links: { target: string; n: number }[] = [];
  for (const { line, n } of proseLines(text)) {
    const prose = withoutCode(line);
    for (const match of prose.matchAll(/!?\[(?:[^\]`]|`[^`]*`)*\]\(\s*(<[^>]*>|[^\s)]+)(?:\s+"[^"]*")?\s*\)/g))
      links.push({ target: match[1]!.replace(/^<|>$/g, ''), n });
    const definition = /^\s{0,3}\[[^\]]+\]:\s*(\S+)/.exec(prose);
    if (definition) links.push({ target: definition[1]!, n });
  }
  return links;
}

const isExternal = (target: string) => /^[a-z][a-z0-9+.-]*:/i.test(target);

describe('documentation links', () => {
  const files = markdownFiles();
  const texts = new Map(files.map((file) => [file, readFileSync(file, 'utf8')]));
  const anchorCache = new Map<string, Set<string>>();
  const anchors = (file: string) => {
    let set = anchorCache.get(file);
    if (!set) anchorCache.set(file, (set = anchorsOf(texts.get(file) ?? readFileSync(file, 'utf8'))));
    return set;
  };

  it('computes anchors as GitHub does', () => {
    assert.equal(slug('What works, what does not yet'), 'what-works-what-does-not-yet');
    assert.equal(slug('What it costs (benchmarks)'), 'what-it-costs-benchmarks');
    assert.equal(slug('`ctx.step(name, fn, options?)`'), 'ctxstepname-fn-options');
    assert.equal(slug('Exactly once — under faults'), 'exactly-once--under-faults');
    assert.equal(slug('2025-11-25 vs 2026-07-28'), '2025-11-25-vs-2026-07-28');
    assert.equal(slug('**Leases** and [fencing](x.md)'), 'leases-and-fencing');
    assert.deepEqual([...anchorsOf('# A\n## A\n```\n# not a heading\n```\n### A')], ['a', 'a-1', 'a-2']);
  });

  it('every relative link and image points at an existing file, and every #fragment at a heading of it', () => {
    const broken: string[] = [];
    for (const file of files) {
      for (const { target, n } of linksOf(texts.get(file)!)) {
        if (isExternal(target)) continue;
        const where = `${relative(ROOT, file)}:${n}: ${target}`;
        const hash = target.indexOf('#');
        const path = decodeURIComponent(hash === -1 ? target : target.slice(0, hash));
        const fragment = hash === -1 ? undefined : decodeURIComponent(target.slice(hash + 1));
        const resolved = path === '' ? file : resolve(dirname(file), path);
        if (!resolved.startsWith(ROOT)) broken.push(`${where} (outside the repository)`);
        else if (!existsSync(resolved)) broken.push(`${where} (no such file)`);
        else if (fragment !== undefined) {
          if (!resolved.endsWith('.md') || statSync(resolved).isDirectory()) broken.push(`${where} (an anchor into a file that is not Markdown)`);
          else if (!anchors(resolved).has(fragment)) broken.push(`${where} (no heading with that anchor)`);
        }
      }
    }
    assert.deepEqual(broken, []);
  });

  it('the README links every guide in docs/', () => {
    const readme = join(ROOT, 'README.md');
    const linked = new Set(
      linksOf(texts.get(readme)!)
        .filter(({ target }) => !isExternal(target))
        .map(({ target }) => resolve(ROOT, decodeURIComponent(target.split('#')[0]!))),
    );
    const guides = readdirSync(join(ROOT, 'docs')).filter((name) => name.endsWith('.md'));
    assert.deepEqual(
      guides.filter((name) => !linked.has(join(ROOT, 'docs', name))),
      [],
      'guides the README does not link',
    );
  });

  it("the README's smallest server is examples/hello-task/server.ts", () => {
    const file = readFileSync(join(ROOT, 'examples/hello-task/server.ts'), 'utf8');
    // The file runs from the repository (its import names the source and says so); the README shows it as a project has it.
    const asInAProject = file
      .split('\n')
      .filter((line) => !line.startsWith('// '))
      .join('\n')
      .replace("from '../../src/index.js'; // in your project: from 'mcp-tasks'", "from 'mcp-tasks';")
      .trim();
    const listing = /```ts\n(\/\/ examples\/hello-task\/server\.ts\n[\s\S]*?)```/.exec(texts.get(join(ROOT, 'README.md'))!)?.[1];
    assert.ok(listing, 'the README shows examples/hello-task/server.ts in a ```ts block whose first line is `// examples/hello-task/server.ts`');
    assert.equal(listing.replace(/^\/\/ examples\/hello-task\/server\.ts\n/, '').trim(), asInAProject);
  });
});
