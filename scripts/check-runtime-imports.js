// What the compiled service can import, checked inside the production image (test-image.sh runs it
// there, with es-module-lexer mounted beside it):
//
//   node check-runtime-imports.mjs /app dist/server.js dist/db/cli.js
//
// From each entry point it follows the ES module graph of dist/ as Node would load it: static
// imports load with the entry point, a dynamic import() of a literal loads later, when that code
// runs. Then, for every package a module names:
// - a module loaded at start may name only Node's built-ins and `dependencies`, each installed;
// - a module loaded later may also name `optionalDependencies` (the embedded PostgreSQL), which the
//   image leaves out and the app loads only when it needs them;
// - no module may name a `devDependency` (drizzle-orm, pino-pretty, ...): the image has none.
// An import() whose specifier is computed names no package and is not followed.
// es-module-lexer is the lexer Vite uses for the same job: it reads imports without running code.
/* global process, console */
import { existsSync, readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import path from 'node:path';
import { init, parse } from 'es-module-lexer';

const STATIC = 1;
const DYNAMIC = 2;

const [root, ...entryPoints] = process.argv.slice(2);
if (!root || entryPoints.length === 0) {
  console.error('usage: check-runtime-imports.mjs <app folder> <entry point>...');
  process.exit(2);
}
const manifest = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'));
const kinds = new Map([
  ...Object.keys(manifest.devDependencies ?? {}).map((name) => [name, 'devDependency']),
  ...Object.keys(manifest.optionalDependencies ?? {}).map((name) => [name, 'optional']),
  ...Object.keys(manifest.dependencies ?? {}).map((name) => [name, 'dependency']),
]);

await init;

/** file (relative to root) → true when it loads with an entry point, false when only later. */
const loadedAtStart = new Map();
const queue = entryPoints.map((file) => [path.normalize(file), true]);
const problems = [];
const named = new Set();

while (queue.length > 0) {
  const [file, atStart] = queue.shift();
  if (loadedAtStart.get(file) === true || loadedAtStart.get(file) === atStart) continue;
  loadedAtStart.set(file, atStart);
  const absolute = path.join(root, file);
  if (!existsSync(absolute)) {
    problems.push(`${file} is imported but not in the image`);
    continue;
  }
  const [imports] = parse(readFileSync(absolute, 'utf8'), file);
  for (const { n: specifier, t: type } of imports) {
    if ((type !== STATIC && type !== DYNAMIC) || specifier === undefined) continue;
    const loadsAtStart = atStart && type === STATIC;
    if (specifier.startsWith('.')) {
      queue.push([path.join(path.dirname(file), specifier), loadsAtStart]);
    } else {
      problems.push(...checkPackage(file, specifier, loadsAtStart));
    }
  }
}

function checkPackage(file, specifier, loadsAtStart) {
  if (specifier.startsWith('node:') || builtinModules.includes(specifier)) return [];
  const name = specifier.startsWith('@') ? specifier.split('/').slice(0, 2).join('/') : specifier.split('/')[0];
  named.add(name);
  const kind = kinds.get(name);
  const installed = existsSync(path.join(root, 'node_modules', name, 'package.json'));
  if (kind === 'dependency' && installed) return [];
  if (kind === 'dependency') return [`${file} imports ${specifier}, a dependency the image does not have`];
  if (kind === 'optional' && !loadsAtStart) return [];
  if (kind === 'optional') return [`${file} imports ${specifier}, an optional dependency, when the service starts: load it only when it is used`];
  if (kind === 'devDependency') return [`${file} imports ${specifier}, a devDependency, which a production install leaves out`];
  return [`${file} imports ${specifier}, which package.json does not declare`];
}

if (problems.length > 0) {
  console.error(problems.join('\n'));
  process.exit(1);
}
const later = [...loadedAtStart].filter(([, atStart]) => !atStart).map(([file]) => file);
console.log(
  `${loadedAtStart.size} modules from ${entryPoints.join(', ')} (loaded only when used: ${later.join(', ') || 'none'}); ` +
    `packages named: ${[...named].sort().join(', ')}`,
);
