// Loads the sample `shop` database (fixtures/schema/shop.sql) into a PostgreSQL server.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join, dirname } from 'node:path';
import pg from 'pg';

/** The repository root, whether running from src/ (tsx, vitest) or from dist/src/ (compiled). */
export function projectRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    try {
      readFileSync(join(dir, 'package.json'));
      return dir;
    } catch {
      dir = dirname(dir);
    }
  }
  throw new Error('cannot locate the warden project root (package.json)');
}

export function fixturePath(...parts: string[]): string {
  return join(projectRoot(), 'fixtures', ...parts);
}

/** Creates database `name` (dropping an old one) and loads the shop schema and rows into it. */
export async function seedShop(superuserUrl: string, name = 'shop'): Promise<void> {
  const admin = new pg.Client({ connectionString: superuserUrl });
  await admin.connect();
  try {
    await admin.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(name)} WITH (FORCE)`);
    await admin.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`);
  } finally {
    await admin.end();
  }
  const url = new URL(superuserUrl);
  url.pathname = `/${name}`;
  const db = new pg.Client({ connectionString: url.toString() });
  await db.connect();
  try {
    await db.query(readFileSync(fixturePath('schema', 'shop.sql'), 'utf8'));
  } finally {
    await db.end();
  }
}
