import { randomBytes } from 'node:crypto';
import { Client } from 'pg';

/** The admin URL of the run's Postgres (started by test/global-setup.ts). */
export function adminUrl(): string {
  const url = process.env.AEGIS_TEST_PG_URL;
  if (!url) throw new Error('AEGIS_TEST_PG_URL is not set: run the tests through jest (global-setup starts Postgres)');
  return url;
}

/** A fresh, empty database; returns its URL and a function that drops it. */
export async function createTestDatabase(prefix = 't'): Promise<{ url: string; drop: () => Promise<void> }> {
  const name = `${prefix}_${randomBytes(6).toString('hex')}`;
  const admin = new Client({ connectionString: adminUrl() });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const u = new URL(adminUrl());
  u.pathname = `/${name}`;
  return {
    url: u.toString(),
    drop: async () => {
      const c = new Client({ connectionString: adminUrl() });
      await c.connect();
      try {
        await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await c.end();
      }
    },
  };
}
