#!/usr/bin/python3
"""psycopg2 scenarios for warden's relay tests (test/integration/pg-psycopg2.test.ts).

Usage: pg_psycopg2_client.py DSN
Runs the same scenarios on whatever DSN it is given (direct or through warden) and prints one
JSON document, so the test can compare the two runs field by field. Values are rendered with
str() so types psycopg2 adapts (Decimal, date, UUID, memoryview) compare exactly.
"""
import io
import json
import sys

import psycopg2


def render(value):
    if value is None:
        return None
    if isinstance(value, memoryview):
        return "\\x" + value.tobytes().hex()
    if isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def rows(cur):
    return [[render(v) for v in row] for row in cur.fetchall()]


def main():
    dsn = sys.argv[1]
    out = {}
    conn = psycopg2.connect(dsn)
    out["ssl_in_use"] = bool(conn.info.ssl_in_use)
    out["server_version"] = conn.server_version
    with conn.cursor() as cur:
        # Parameters (client-side interpolation, as psycopg2 does), every column type of customers.
        cur.execute(
            "SELECT * FROM customers WHERE id = %s OR email = %s OR full_name = %s ORDER BY id",
            (3, "bob.example2@example.com", "Hana 花子 Dummy"),
        )
        out["params"] = {"columns": [d.name for d in cur.description], "rows": rows(cur)}
        cur.execute("SELECT %s::int + %s::int AS s, %s::text AS t, %s IS NULL AS n", (40, 2, "it's", None))
        out["params_literals"] = rows(cur)

        # fetchmany in pages
        cur.execute("SELECT id, full_name FROM customers ORDER BY id")
        pages = []
        while True:
            page = cur.fetchmany(7)
            if not page:
                break
            pages.append([[render(v) for v in r] for r in page])
        out["fetchmany"] = pages

        # An error, then the connection goes on after rollback.
        try:
            cur.execute("INSERT INTO customers (full_name, email) VALUES (%s, %s)", ("Dup", "alice.testperson1@example.com"))
            out["error"] = None
        except psycopg2.Error as e:
            out["error"] = {"pgcode": e.pgcode, "pgerror": e.pgerror, "detail": e.diag.message_detail}
            conn.rollback()

    # Server-side (named) cursor: DECLARE … and FETCH FORWARD itersize at a time.
    with conn.cursor(name="srv_cursor") as cur:
        cur.itersize = 333
        cur.execute("SELECT g, md5(g::text) FROM generate_series(1, 5000) g")
        first = cur.fetchmany(10)
        total = len(first)
        checksum = sum(r[0] for r in first)
        for r in cur:
            total += 1
            checksum += r[0]
        out["named_cursor"] = {"first": [list(r) for r in first[:3]], "total": total, "checksum": checksum}
    conn.commit()

    # COPY via copy_expert, both directions.
    with conn.cursor() as cur:
        buf = io.StringIO()
        cur.copy_expert("COPY customers (id, full_name, email, ssn, card_number) TO STDOUT WITH (FORMAT csv, HEADER)", buf)
        out["copy_out"] = buf.getvalue()
        cur.execute("CREATE TEMP TABLE copied (id int, name text, note text)")
        data = io.StringIO("".join(f"{i}\tname {i}\t{'ü' * (i % 5)}\n" for i in range(1, 2001)))
        cur.copy_expert("COPY copied FROM STDIN", data)
        out["copy_in_rowcount"] = cur.rowcount
        cur.execute("SELECT count(*), sum(id), max(note) FROM copied")
        out["copy_in"] = rows(cur)
    conn.commit()

    with conn.cursor() as cur:
        cur.execute("SHOW application_name")
        out["application_name"] = cur.fetchone()[0]
    conn.close()
    print(json.dumps(out, ensure_ascii=False, sort_keys=True))


if __name__ == "__main__":
    main()
