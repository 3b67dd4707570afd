import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { attestationExpired, loadAttestations, parseAttestations } from '../../src/outputs/attestations';

const GOOD = `attestations:
  - item: rotation-procedures-tested
    by: jane.doe
    at: 2026-01-15
    evidence: https://wiki.example.com/sec/rotation-drill
    expires: 2026-07-15
  - item: no-plaintext-secrets
    by: sam
    at: 2026-02-01T09:30:00Z
    evidence: https://ci.example.com/runs/42
    expires: 2026-08-01T00:00:00Z
`;

describe('attestations file', () => {
  it('parses attestations; a bare expiry date lasts to the end of that day', () => {
    const { attestations, problems } = parseAttestations(GOOD, 'att.yaml');
    expect(problems).toEqual([]);
    expect(attestations[0]).toEqual({
      item: 'rotation-procedures-tested',
      by: 'jane.doe',
      at: '2026-01-15T00:00:00.000Z',
      evidence: 'https://wiki.example.com/sec/rotation-drill',
      expires: '2026-07-15T23:59:59.999Z',
    });
    expect(attestationExpired(attestations[0], new Date('2026-07-15T12:00:00Z'))).toBe(false);
    expect(attestationExpired(attestations[0], new Date('2026-07-16T00:00:00Z'))).toBe(true);
  });

  it('names file, line and path of an unknown item and other problems', () => {
    const text = `attestations:
  - item: rotation-procedures-tested
    by: jane
    at: 2026-01-15
    evidence: https://wiki.example.com/x
    expires: 2026-07-15
  - item: not-a-real-item
    by: jane
    at: 2026-01-15
    evidence: javascript:alert(1)
    expires: soon
`;
    const { problems } = parseAttestations(text, 'att.yaml');
    expect(problems).toEqual([
      expect.stringMatching(/^att\.yaml:7:11: attestations\[1\]\.item: unknown checklist item "not-a-real-item" \(known: secret-manager-configured, /),
      'att.yaml:10:15: attestations[1].evidence: an http(s) URL to the evidence',
      'att.yaml:11:14: attestations[1].expires: an ISO 8601 date or date-time, e.g. 2026-07-15',
    ]);
    const unknown = parseAttestations(text.replace('javascript:alert(1)', 'https://x.example').replace('soon', '2026-09-01'), 'att.yaml');
    expect(unknown.problems).toEqual([expect.stringMatching(/^att\.yaml:7:11: attestations\[1\]\.item: unknown checklist item "not-a-real-item" \(known: secret-manager-configured, /)]);
  });

  it('rejects missing fields, unknown keys, expiry before attestation and bad YAML', () => {
    expect(parseAttestations('attestations:\n  - item: rotation-procedures-tested\n    by: x\n    colour: red\n', 'a.yaml').problems).toEqual([
      'a.yaml:2:5: attestations[0].at: expected string, got nothing',
      'a.yaml:2:5: attestations[0].evidence: expected string, got nothing',
      'a.yaml:2:5: attestations[0].expires: expected string, got nothing',
      'a.yaml:2:5: attestations[0]: unknown key "colour"',
    ]);
    expect(parseAttestations(GOOD.replace('expires: 2026-07-15', 'expires: 2025-07-15'), 'a.yaml').problems).toEqual([
      'a.yaml:6:14: attestations[0].expires: expires before it was attested (at 2026-01-15)',
    ]);
    expect(parseAttestations('attestations: [\n', 'a.yaml').problems[0]).toMatch(/^a\.yaml:\d+:\d+: invalid YAML/);
  });

  it('loadAttestations throws a config error listing problems; reads a good file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'aegis-att-'));
    try {
      const good = join(dir, 'good.yaml');
      writeFileSync(good, GOOD);
      expect(await loadAttestations(good)).toHaveLength(2);
      const bad = join(dir, 'bad.yaml');
      writeFileSync(bad, 'attestations:\n  - item: nope\n    by: a\n    at: 2026-01-01\n    evidence: https://x.example\n    expires: 2026-02-01\n');
      await expect(loadAttestations(bad)).rejects.toMatchObject({ code: 'AUDIT_ERR_CONFIG', message: expect.stringContaining(`${bad}:2:11: attestations[0].item: unknown checklist item "nope"`) });
      await expect(loadAttestations(join(dir, 'missing.yaml'))).rejects.toMatchObject({ code: 'AUDIT_ERR_CONFIG' });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
