/** `walkin/storage/postgres`: PostgreSQL storage, for several Walk-in nodes sharing one database. */
export { openPostgresStorage, PostgresStorage, type PostgresStorageOptions } from "./postgresStorage.js";
export { PostgresConnectError } from "./connect.js";
