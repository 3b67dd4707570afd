import check from '../../checks/vault-token-hygiene';
import { CheckTester } from '../helpers/check-tester';
import { FakeVaultSource, goodToken, rootToken } from '../fakes/vault-source';
import { sourceUnavailable } from '../../src/core/errors';

const svc = (accessor: string, over = {}) => goodToken({ label: `svc-${accessor}`, accessor, ...over });

CheckTester.run(check, {
  pass: [
    { name: 'the auditor token alone, short-lived and renewable', sources: () => ({ vault: new FakeVaultSource() }) },
    {
      name: 'service tokens by accessor, all good',
      sources: () => ({
        vault: new FakeVaultSource({ tokenAccessors: { gateway: 'acc-gw', identity: 'acc-id' }, accessors: { 'acc-gw': svc('acc-gw'), 'acc-id': svc('acc-id', { ttl: 60, expireTime: new Date('2026-11-22T12:01:00Z') }) } }),
      }),
    },
    {
      name: 'self can be left out',
      options: { self: false },
      sources: () => ({ vault: new FakeVaultSource({ self: rootToken(), tokenAccessors: { gateway: 'acc-gw' }, accessors: { 'acc-gw': svc('acc-gw') } }) }),
    },
  ],
  fail: [
    {
      name: 'the auditor runs on a root token',
      sources: () => ({ vault: new FakeVaultSource({ self: rootToken() }) }),
      findings: [
        {
          messageId: 'root',
          resource: 'token=self',
          severity: 'high',
          message: /^Vault token self is a root token; it also never expires and is not renewable\.$/,
          evidence: { problems: ['root', 'noExpiry', 'notRenewable'], policies: ['root'], ttlSeconds: 0, expireTime: null },
        },
      ],
    },
    {
      name: 'root by path alone',
      sources: () => ({ vault: new FakeVaultSource({ self: goodToken({ policies: ['default'], path: 'auth/token/root' }) }) }),
      findings: [{ messageId: 'root', resource: 'token=self', message: /is a root token\.$/ }],
    },
    {
      name: 'service tokens that never expire or cannot be renewed',
      sources: () => ({
        vault: new FakeVaultSource({
          tokenAccessors: { gateway: 'acc-gw', identity: 'acc-id', insight: 'acc-in' },
          accessors: { 'acc-gw': svc('acc-gw', { ttl: 0, expireTime: null }), 'acc-id': svc('acc-id', { renewable: false, type: 'batch' }), 'acc-in': svc('acc-in') },
        }),
      }),
      findings: [
        { messageId: 'noExpiry', resource: 'token=gateway', message: /^Vault token gateway never expires \(no TTL\)\.$/, evidence: { accessor: 'acc-gw' } },
        { messageId: 'notRenewable', resource: 'token=identity', message: /^Vault token identity is not renewable\.$/, evidence: { type: 'batch' } },
      ],
    },
    {
      name: 'accessors from options add to the source',
      options: { token_accessors: { ci: 'acc-ci' } },
      sources: () => ({ vault: new FakeVaultSource({ accessors: { 'acc-ci': rootToken({ accessor: 'acc-ci' }) } }) }),
      findings: [{ messageId: 'root', resource: 'token=ci' }],
    },
  ],
  error: [
    {
      name: 'no token to inspect (self left out, no accessors) proves nothing',
      options: { self: false },
      sources: () => ({ vault: new FakeVaultSource({ self: rootToken() }) }),
      error: /no Vault token to inspect.*token_accessors/,
      code: 'AUDIT_ERR_CONFIG',
    },
    {
      name: 'lookup-self refused',
      sources: () => ({ vault: new FakeVaultSource().fail('lookupSelf', sourceUnavailable('vault', 'forbidden', 'looking up the auditor token (auth/token/lookup-self): access denied: permission denied')) }),
      error: /^vault: looking up the auditor token .*access denied/,
      code: 'AUDIT_ERR_SOURCE_UNAVAILABLE',
    },
    {
      name: 'an accessor lookup failing',
      sources: () => ({ vault: new FakeVaultSource({ tokenAccessors: { gateway: 'acc-gw' } }).fail('lookupAccessor') }),
      error: /^vault: lookupAccessor: connection refused/,
    },
  ],
});
