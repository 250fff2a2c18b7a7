/**
 * The server-side function that runs one group of appends: a PL/pgSQL function created with the
 * Journal's tables (`<prefix>append_v1`), called as one statement outside any explicit transaction —
 * one round trip and one commit per group instead of BEGIN, the lock, the version reads, the write
 * and COMMIT (which made an append cost about twice a raw single-row INSERT transaction).
 *
 * What it does, in the statement's own transaction:
 *
 * 1. `SELECT … FROM <prefix>journal WHERE id = 1 FOR UPDATE` — the journal row's lock, held until the
 *    statement commits: seqs are handed out in commit order across every process (see
 *    `journalWriter.ts` for why that gives settled order).
 * 2. For each append in order: its stream's version — what the group's previous append on the
 *    same stream left (`a_previous`, the caller's 1-based index of it, 0 for none), else one index
 *    lookup in `<prefix>streams` (measured faster than one join over the group's streams, whose
 *    generic plan halved the rate of single appends); then the same checks as every Journal — the
 *    expected version (`-1` = any), then seqs and versions within `Number.MAX_SAFE_INTEGER` — and
 *    for an append that passes, its first seq (`greatest(last_seq + 1, checkpoint)`) and its
 *    timestamp (`greatest(now, last_timestamp)`).
 * 3. If any append passed: one INSERT of the records of those that passed (each record names its
 *    append, `r_append`, and its place in it, `r_index`), one upsert of their streams' versions,
 *    `last_seq`/`last_timestamp` moved on, and one `pg_notify` for followers — so a group costs a
 *    few statements and one lookup per append, whatever its size.
 *
 * It returns one row per append (`o_append`, its 1-based place in the group): `o_code` 0 stored,
 * 1 version conflict, 2 a seq or version past the safe range (nothing of it stored), with the
 * stream's version before it, the seq its first record got (or would have got) and its timestamp;
 * then a row with `o_append` 0 whose `o_last_seq` is the journal's last seq after the group. The
 * caller turns the codes into results and errors with the shared checks' messages
 * (`journalChecks.ts`), so the limits above are the same numbers.
 * @internal
 */
import type { JournalTables } from "./journalTables.ts"

/** The largest safe integer, as the function compares with it. */
const MAX_SAFE = "9007199254740991"

/** The `CREATE OR REPLACE FUNCTION` statement for `tables`. @internal */
export const appendFunctionDdl = (tables: JournalTables): string =>
  `CREATE OR REPLACE FUNCTION ${tables.append} (
    a_namespace text[], a_id text[], a_expected bigint[], a_count int[], a_now bigint[], a_previous int[],
    r_append int[], r_index int[], r_type text[], r_payload text[], r_metadata text[], r_metadata_keys text[],
    p_channel text, p_origin text)
  RETURNS TABLE (o_append int, o_code int, o_current bigint, o_first_seq bigint, o_timestamp bigint, o_last_seq bigint)
  LANGUAGE plpgsql AS $annals$
  DECLARE
    v_last bigint; v_last_timestamp bigint; v_checkpoint bigint; v_stored boolean := false;
    v_current bigint[]; v_after bigint[]; v_first bigint[]; v_stamp bigint[]; v_code int[];
  BEGIN
    SELECT j.last_seq, j.last_timestamp, j.checkpoint INTO v_last, v_last_timestamp, v_checkpoint
      FROM ${tables.journal} j WHERE j.id = 1 FOR UPDATE;
    FOR i IN 1 .. coalesce(array_length(a_namespace, 1), 0) LOOP
      IF a_previous[i] > 0 THEN
        v_current[i] := v_after[a_previous[i]];
      ELSE
        v_current[i] := coalesce((SELECT s.version FROM ${tables.streams} s WHERE s.namespace = a_namespace[i] AND s.id = a_id[i]), 0);
      END IF;
      v_first[i] := greatest(v_last + 1, v_checkpoint);
      v_stamp[i] := greatest(a_now[i], v_last_timestamp);
      IF a_expected[i] >= 0 AND a_expected[i] <> v_current[i] THEN
        v_code[i] := 1;
      ELSIF a_count[i] - 1 > ${MAX_SAFE} - v_first[i] OR a_count[i] > ${MAX_SAFE} - v_current[i] THEN
        v_code[i] := 2;
      ELSE
        v_code[i] := 0;
        v_last := v_first[i] + a_count[i] - 1;
        v_last_timestamp := v_stamp[i];
        v_stored := true;
      END IF;
      v_after[i] := CASE WHEN v_code[i] = 0 THEN v_current[i] + a_count[i] ELSE v_current[i] END;
    END LOOP;
    IF v_stored THEN
      INSERT INTO ${tables.records} (seq, namespace, id, version, type, timestamp, payload, metadata, metadata_keys)
        SELECT v_first[u.a] + u.k - 1, a_namespace[u.a], a_id[u.a], v_current[u.a] + u.k, u.t, v_stamp[u.a],
               decode(u.p, 'hex'), u.m::jsonb, u.mk::jsonb
        FROM unnest(r_append, r_index, r_type, r_payload, r_metadata, r_metadata_keys) AS u(a, k, t, p, m, mk)
        WHERE v_code[u.a] = 0;
      INSERT INTO ${tables.streams} (namespace, id, version)
        SELECT u.n, u.i, max(u.v) FROM unnest(a_namespace, a_id, v_after, v_code) AS u(n, i, v, c)
        WHERE u.c = 0 GROUP BY u.n, u.i
        ON CONFLICT (namespace, id) DO UPDATE SET version = EXCLUDED.version;
      UPDATE ${tables.journal} SET last_seq = v_last, last_timestamp = v_last_timestamp WHERE id = 1;
      PERFORM pg_notify(p_channel, p_origin || ' ' || v_last);
    END IF;
    RETURN QUERY SELECT u.k::int, u.c, u.v, u.f, u.t, NULL::bigint
      FROM unnest(v_code, v_current, v_first, v_stamp) WITH ORDINALITY AS u(c, v, f, t, k);
    -- A last row, o_append = 0: the journal's last seq after the group.
    RETURN QUERY SELECT 0, NULL::int, NULL::bigint, NULL::bigint, NULL::bigint, v_last;
  END $annals$`

/** The statement that calls the function (its arguments bound as `$1 … $14`, in the order of the DDL). @internal */
export const appendCall = (tables: JournalTables): string =>
  `SELECT o_append, o_code, o_current, o_first_seq, o_timestamp, o_last_seq FROM ${tables.append}(
    $1::text[], $2::text[], $3::bigint[], $4::int[], $5::bigint[], $6::int[],
    $7::int[], $8::int[], $9::text[], $10::text[], $11::text[], $12::text[], $13, $14)`
