/**
 * lazyRegistry: the built-in checks' metadata from the build's catalog, each check's code
 * loaded on first use — what a run of one check reads of the others is their metadata only.
 */
import { registry } from '../../checks';
import { lazyRegistry } from '../../src/core/registry';
import type { AnyCheck } from '../../src/core/define-check';
import { isAuditError } from '../../src/core/errors';

const metas = () => [...registry.values()].map((c) => JSON.parse(JSON.stringify(c.meta)) as AnyCheck['meta']);

function counting(load: (id: string) => AnyCheck = (id) => registry.get(id) as AnyCheck) {
  const calls: string[] = [];
  const lazy = lazyRegistry(metas(), (id) => {
    calls.push(id);
    return load(id);
  });
  return { lazy, calls };
}

test('the same ids, in the same order, with the catalog\'s metadata; building it and reading metadata load nothing', () => {
  const { lazy, calls } = counting();
  expect([...lazy.keys()]).toEqual([...registry.keys()]);
  for (const [id, check] of lazy) expect(check.meta).toEqual(JSON.parse(JSON.stringify(registry.get(id)?.meta)));
  expect(calls).toEqual([]);
});

test("a check's options, messages, run, part and preload load that check, once, and are its own", async () => {
  const { lazy, calls } = counting();
  const real = registry.get('receipt-chain') as AnyCheck;
  const check = lazy.get('receipt-chain') as AnyCheck;
  expect(check.options).toBe(real.options);
  expect(check.messages).toBe(real.messages);
  expect(typeof check.part).toBe('function');
  expect(typeof check.preload).toBe('function');
  expect(calls).toEqual(['receipt-chain']);
  // A check without part or preload has none through the registry either.
  const plain = [...registry.values()].find((c) => !c.part && !c.preload) as AnyCheck;
  const lazyPlain = lazy.get(plain.meta.id) as AnyCheck;
  expect(lazyPlain.part).toBeUndefined();
  expect(lazyPlain.preload).toBeUndefined();
  expect(calls).toEqual(['receipt-chain', plain.meta.id]);
  // run() is the check's own: given a context, it calls the real run with it.
  const seen: unknown[] = [];
  const fake = { ...real, meta: { ...real.meta, id: 'receipt-chain' }, run: async (ctx: unknown) => void seen.push(ctx) } as AnyCheck;
  const one = lazyRegistry([real.meta], () => fake).get('receipt-chain') as AnyCheck;
  const ctx = { marker: 1 } as unknown as Parameters<AnyCheck['run']>[0];
  await one.run(ctx);
  expect(seen).toEqual([ctx]);
});

test('a module that holds another check than the catalog says is an error naming both', () => {
  const { lazy } = counting(() => registry.get('auth-mode') as AnyCheck);
  let err: unknown;
  try {
    void (lazy.get('receipt-chain') as AnyCheck).options;
  } catch (e) {
    err = e;
  }
  expect(isAuditError(err)).toBe(true);
  expect((err as Error).message).toContain('receipt-chain');
  expect((err as Error).message).toContain('auth-mode');
});
