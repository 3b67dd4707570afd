-- Postgres role for aegis-audit: read-only on the audited tables, plus its own state schema
-- (checkpoints, run history). Run as the database owner; replace the password source.
--   psql "$ADMIN_URL" -v audit_password="'...'" -f docs/deploy/postgres-grants.sql

CREATE ROLE aegis_audit LOGIN PASSWORD :audit_password
  NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT CONNECTION LIMIT 10;

-- Every session of the auditor is read-only unless it writes its own state explicitly.
ALTER ROLE aegis_audit SET statement_timeout = '30s';
ALTER ROLE aegis_audit SET idle_in_transaction_session_timeout = '60s';

GRANT CONNECT ON DATABASE :"DBNAME" TO aegis_audit;  -- psql fills DBNAME with the database it is connected to
GRANT USAGE ON SCHEMA public TO aegis_audit;
GRANT SELECT ON TABLE
  public.audit_log,
  public.transparency_historical_keys,
  public.transparency_roots,
  public.api_keys
TO aegis_audit;
-- Nothing else: no INSERT/UPDATE/DELETE on the audited tables, no other tables.
REVOKE CREATE ON SCHEMA public FROM aegis_audit;

-- The auditor's own state (state.postgres.schema, default aegis_audit), owned by it.
CREATE SCHEMA IF NOT EXISTS aegis_audit AUTHORIZATION aegis_audit;

-- receipt-chain binds its checkpoint to the server's identity (pg_control_system()), which
-- every role may call by default. Where EXECUTE on it was revoked from PUBLIC, grant it back:
--   GRANT EXECUTE ON FUNCTION pg_control_system() TO aegis_audit;

-- Leader election uses pg_try_advisory_lock, which needs no grant.
