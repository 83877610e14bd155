import type postgres from 'postgres';
import { outcomes, type WriteRecord } from './write-load.js';

/**
 * Compares what a write load was told (201 and an id) with what the table holds.
 *
 * The invariant is "every acknowledged write is stored, and nothing is stored twice"; it is not
 * "every stored row was acknowledged". When the connection to the database breaks after a batch's
 * COMMIT was sent but before its answer arrived (the server killed, the worker killed), the commit
 * may or may not have happened: the clients of that batch got a 503 or a broken connection, never
 * a 201, and their rows may exist. Those are counted apart, with the answer their request got.
 */
export interface Accounting {
  /** Requests answered 201. */
  acknowledged: number;
  /** Of those, found in the table with the id and name they were answered with. */
  found: number;
  /** Answered 201 but absent, or present under another name: lost writes. */
  lost: { name: string; id: number }[];
  /** Ids answered to more than one request. */
  reusedIds: number[];
  /** Names stored in more than one row: duplicated writes. */
  duplicated: { name: string; rows: number }[];
  /** Rows whose request was not answered 201, by the answer it got instead. */
  storedUnacknowledged: Record<string, number>;
  /** Rows named like this load's requests that no request of it sent. */
  unexplained: string[];
}

export async function account(sql: postgres.Sql, prefix: string, records: readonly WriteRecord[]): Promise<Accounting> {
  const rows = await sql<{ id: number; name: string }[]>`
    SELECT id::int AS id, name FROM items WHERE starts_with(name, ${`${prefix} `}) ORDER BY id`;
  const byId = new Map(rows.map((row) => [row.id, row.name]));
  const rowsByName = new Map<string, number>();
  for (const row of rows) rowsByName.set(row.name, (rowsByName.get(row.name) ?? 0) + 1);

  const acknowledged = records.filter((record) => record.status === 201);
  const lost = acknowledged.filter((record) => byId.get(record.id!) !== record.name).map(({ name, id }) => ({ name, id: id! }));
  const idCounts = new Map<number, number>();
  for (const record of acknowledged) idCounts.set(record.id!, (idCounts.get(record.id!) ?? 0) + 1);

  const recordsByName = new Map(records.map((record) => [record.name, record]));
  const unacknowledgedRecords: WriteRecord[] = [];
  const unexplained: string[] = [];
  for (const name of rowsByName.keys()) {
    const record = recordsByName.get(name);
    if (!record) unexplained.push(name);
    else if (record.status !== 201) unacknowledgedRecords.push(record);
  }

  return {
    acknowledged: acknowledged.length,
    found: acknowledged.length - lost.length,
    lost,
    reusedIds: [...idCounts].filter(([, count]) => count > 1).map(([id]) => id),
    duplicated: [...rowsByName].filter(([, count]) => count > 1).map(([name, count]) => ({ name, rows: count })),
    storedUnacknowledged: outcomes(unacknowledgedRecords),
    unexplained,
  };
}

/** Milliseconds from start to answer (or error) of a request. */
export function latency(record: WriteRecord): number {
  return record.finishedAt - record.startedAt;
}

/** The slowest of `records`, or undefined if there are none. */
export function slowest(records: readonly WriteRecord[]): WriteRecord | undefined {
  let worst: WriteRecord | undefined;
  for (const record of records) if (!worst || latency(record) > latency(worst)) worst = record;
  return worst;
}
