/**
 * Schema changes for a Durable Object's SQLite tables. `CREATE TABLE IF NOT EXISTS` leaves a table
 * made by an older version as it was, so a column added since is added here when missing.
 */
export function addColumnIfMissing(sql: SqlStorage, table: string, column: string, declaration: string): void {
  const columns = sql.exec(`PRAGMA table_info(${table})`).toArray();
  if (!columns.some((existing) => existing.name === column)) sql.exec(`ALTER TABLE ${table} ADD COLUMN ${column} ${declaration}`);
}
