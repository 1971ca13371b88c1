-- EMQ 2.x's tables for emq_auth_pgsql (PostgreSQL 9.6+), as mqttd reads them with the default
-- auth.pgsql.auth_query, super_query and acl_query. Columns mean what data/schema/mysql.sql
-- says.
CREATE TABLE IF NOT EXISTS mqtt_user (
  id SERIAL PRIMARY KEY,
  is_superuser BOOLEAN DEFAULT FALSE,
  username CHARACTER VARYING(100) UNIQUE,
  password CHARACTER VARYING(128),
  salt CHARACTER VARYING(64)
);

CREATE TABLE IF NOT EXISTS mqtt_acl (
  id SERIAL PRIMARY KEY,
  allow INTEGER,
  ipaddr CHARACTER VARYING(60),
  username CHARACTER VARYING(100),
  clientid CHARACTER VARYING(100),
  access INTEGER,
  topic CHARACTER VARYING(100)
);
