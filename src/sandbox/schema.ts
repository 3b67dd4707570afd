/**
 * The audited deployment's tables (docs/aegis-formats.md), in a configurable
 * schema with configurable table names, exactly as the auditor expects to find them.
 */
import type { ClientBase } from 'pg';

export interface SandboxTables {
  audit_log: string;
  historical_keys: string;
  roots: string;
  api_keys: string;
}

export const DEFAULT_TABLES: Readonly<SandboxTables> = Object.freeze({
  audit_log: 'audit_log',
  historical_keys: 'transparency_historical_keys',
  roots: 'transparency_roots',
  api_keys: 'api_keys',
});

const IDENT_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;

export function ident(name: string): string {
  if (!IDENT_RE.test(name)) throw new Error(`"${name}" is not a plain SQL identifier (letters, digits, _)`);
  return '"' + name + '"';
}

/** Schema-qualified, quoted table names. */
export function qualified(schema: string, tables: SandboxTables): Record<keyof SandboxTables, string> {
  const s = ident(schema);
  return {
    audit_log: `${s}.${ident(tables.audit_log)}`,
    historical_keys: `${s}.${ident(tables.historical_keys)}`,
    roots: `${s}.${ident(tables.roots)}`,
    api_keys: `${s}.${ident(tables.api_keys)}`,
  };
}

export function schemaDdl(schema: string, tables: SandboxTables): string[] {
  const q = qualified(schema, tables);
  return [
    `CREATE SCHEMA IF NOT EXISTS ${ident(schema)}`,
    `CREATE TABLE ${q.audit_log} (
       id bigint PRIMARY KEY,
       created_at timestamptz NOT NULL,
       action text NOT NULL,
       payload jsonb NOT NULL,
       prev_hash text NOT NULL,
       row_hash text NOT NULL,
       signature text NOT NULL,
       key_fingerprint text NOT NULL)`,
    `CREATE INDEX ON ${q.audit_log} (action)`,
    `CREATE TABLE ${q.historical_keys} (
       fingerprint text PRIMARY KEY,
       public_key text NOT NULL,
       promoted_at timestamptz)`,
    `CREATE TABLE ${q.roots} (
       id bigint PRIMARY KEY,
       created_at timestamptz NOT NULL,
       up_to_id bigint NOT NULL,
       root_hash text NOT NULL,
       signature text NOT NULL,
       key_fingerprint text NOT NULL)`,
    `CREATE TABLE ${q.api_keys} (
       id text PRIMARY KEY,
       prefix text NOT NULL,
       created_at timestamptz NOT NULL,
       last_used_at timestamptz,
       revoked_at timestamptz)`,
  ];
}

export async function createSchema(client: ClientBase, schema: string, tables: SandboxTables): Promise<void> {
  for (const sql of schemaDdl(schema, tables)) await client.query(sql);
}
