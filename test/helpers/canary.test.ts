/**
 * The canary's detector finds what it must without any product code: a check that puts a
 * secret (or a piece of one) into its evidence, its message or its state is caught by the
 * CheckTester even with the product's scrubber switched off.
 */
import { z } from 'zod';
import { defineCheck, type AnyCheck } from '../../src/core/define-check';
import { KnownSecrets } from '../../src/core/secret';
import * as redact from '../../src/core/redact';
import { FakeSecretStore } from '../fakes/secret-store';
import { expectNoSecrets, runCase } from './check-tester';
import { findLeaks, secretPieces } from './canary';

describe('secretPieces / findLeaks', () => {
  test('the whole value and every 8-character piece of it, anywhere in the text', () => {
    expect(secretPieces('abcdefghij')).toEqual(['abcdefghij', 'abcdefgh', 'bcdefghi', 'cdefghij']);
    expect(findLeaks(['s3cr3t-value-0042'], [['a', 'x 3t-value y']])).toEqual(['a: "3t-value"']);
    expect(findLeaks(['s3cr3t-value-0042'], [['a', 's3cr3t-']])).toEqual([]); // 7 characters
    expect(findLeaks(['short'], [['a', 'a short one']])).toEqual(['a: "short"']);
  });

  test('PEM armour and the public ed25519 PKCS#8 header are not secret; the key body is, line by line', () => {
    const armour = (label: string) => `-----${label} ${'PRIVATE'} KEY-----`;
    const pem = `${armour('BEGIN')}\nMC4CAQAwBQYDK2VwBCIEIGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE\n${armour('END')}\n`;
    const pieces = secretPieces(pem);
    expect(pieces).not.toContain(armour('BEGIN').slice(0, 8));
    expect(pieces).not.toContain('MC4CAQAw');
    expect(pieces).toContain('EIGb9ECW');
    expect(findLeaks([pem], [['report', 'public key prefix MC4CAQAwBQYDK2VwBCIEI only']])).toEqual([]);
    expect(findLeaks([pem], [['report', 'oops lshQhqow']])).toEqual(['report: "lshQhqow"']);
  });
});

describe('the CheckTester canary does not rely on the scrubber', () => {
  const PLANTED = 'planted-internal-secret-0042';
  const leaky = (where: 'evidence' | 'message' | 'state') =>
    defineCheck({
      meta: {
        id: 'leaky',
        title: 'A check that leaks',
        description: 'Puts a secret where it must never go.',
        severity: 'high',
        sources: ['secrets'],
        schedule: '* * * * *',
        checklist: [],
        runbook: 'docs/runbooks/leaky.md',
        remediation: 'None.',
      },
      messages: { leak: 'Value {{v}}.' },
      options: z.object({}),
      async run(ctx) {
        const [h] = await ctx.source('secrets').holders('INTERNAL_SECRET');
        const raw = h.value.reveal();
        const piece = raw.slice(3, 15); // a middle piece, not the whole value
        if (where === 'state') await ctx.state.set('leaky', { piece });
        ctx.report({
          messageId: 'leak',
          resource: 'service=gateway',
          data: { v: where === 'message' ? piece : 'x' },
          evidence: where === 'evidence' ? { seen: piece } : {},
        });
      },
    }) as unknown as AnyCheck;

  const sources = () => ({ secrets: new FakeSecretStore({ holders: [{ service: 'gateway', name: 'INTERNAL_SECRET', value: PLANTED }] }) });

  beforeEach(() => {
    // The product's last line of defence, switched off: the canary must still see the leak.
    jest.spyOn(KnownSecrets.prototype, 'scrub').mockImplementation((t: string) => t);
    jest.spyOn(redact, 'scrubText').mockImplementation((t: string) => t);
  });
  afterEach(() => jest.restoreAllMocks());

  test.each(['evidence', 'message', 'state'] as const)('a piece of a secret in the %s is caught', async (where) => {
    const outcome = await runCase(leaky(where), { name: where, sources });
    expect(outcome.result.status).toBe('fail');
    expect(() => expectNoSecrets(outcome)).toThrow(/a secret value \(or a piece of one\) reached the output: .*"d-intern"/);
  });
});
