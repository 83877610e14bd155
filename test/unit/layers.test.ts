import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * The layers' arrows point one way: app.ts wires everything; resources (items/) use db/ and the
 * cross-cutting http/ plugins; db/ and http/ know no resource, and http/ knows no database. Errors
 * carry their own status and code (src/errors.ts), so the error handler needs no domain's types.
 */

const SOURCE = path.resolve('src');

function importsOf(directory: string): { file: string; target: string }[] {
  return readdirSync(path.join(SOURCE, directory), { recursive: true, encoding: 'utf8' })
    .filter((file) => file.endsWith('.ts'))
    .flatMap((file) => {
      const text = readFileSync(path.join(SOURCE, directory, file), 'utf8');
      return [...text.matchAll(/^(?:import|export)[^'"]*from '(\.[^']+)'/gm)].map((match) => ({
        file: path.join(directory, file),
        target: path.relative(SOURCE, path.resolve(SOURCE, directory, path.dirname(file), match[1]!)),
      }));
    });
}

const into = (layer: string) => ({ target }: { target: string }) => target.startsWith(`${layer}/`);

describe('the layers of src/', () => {
  it('http/ imports neither db/ nor items/', () => {
    expect(importsOf('http').filter((entry) => into('db')(entry) || into('items')(entry))).toEqual([]);
  });

  it('db/ imports neither http/ nor items/', () => {
    expect(importsOf('db').filter((entry) => into('http')(entry) || into('items')(entry))).toEqual([]);
  });

  it('finds the imports it checks (the check itself works)', () => {
    expect(importsOf('items')).toContainEqual({ file: 'items/service.ts', target: 'db/batcher.js' });
  });
});
