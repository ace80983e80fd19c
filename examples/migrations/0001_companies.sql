-- The company example's table (run by PostgresCompanyRepository::migrate,
-- after the outbox's own migration). Idempotent.
CREATE TABLE IF NOT EXISTS companies (
    id uuid PRIMARY KEY,
    name text NOT NULL,
    country_id uuid NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
