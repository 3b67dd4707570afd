/** What the fleet tests share: a one-off query on a database, and a GET's body. */
import { get } from 'node:http';
import { Client } from 'pg';

/** Runs one statement on its own connection (replicas and the test share the database, not a client). */
export async function sql<T>(url: string, text: string, values: unknown[] = []): Promise<T[]> {
  const c = new Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query(text, values)).rows as T[];
  } finally {
    await c.end();
  }
}

export function fetchText(url: string): Promise<string> {
  return new Promise((res, rej) => {
    get(url, (r) => {
      let b = '';
      r.on('data', (c: Buffer) => (b += c.toString()));
      r.on('end', () => res(b));
    }).on('error', rej);
  });
}
