-- One PostgreSQL server, two databases: Keycloak's and the gateway's (compose.yaml).
-- Runs once, when the data volume is created.
CREATE USER keycloak WITH PASSWORD 'keycloak';
CREATE DATABASE keycloak OWNER keycloak;
CREATE USER gateway WITH PASSWORD 'gateway';
CREATE DATABASE gateway OWNER gateway;
