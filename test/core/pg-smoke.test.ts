import { Client } from 'pg';
import { createTestDatabase } from '../helpers/pg';

test('the run has a real Postgres and each suite gets its own database', async () => {
  const db = await createTestDatabase();
  const c = new Client({ connectionString: db.url });
  await c.connect();
  const r = await c.query<{ db: string; v: string }>('select current_database() as db, current_setting($1) as v', ['server_version_num']);
  await c.end();
  await db.drop();
  expect(r.rows[0].db).toMatch(/^t_[0-9a-f]{12}$/);
  expect(Number(r.rows[0].v)).toBeGreaterThanOrEqual(150000);
});
