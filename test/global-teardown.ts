export default async function globalTeardown(): Promise<void> {
  await globalThis.__AEGIS_TEST_PG__?.stop();
}
