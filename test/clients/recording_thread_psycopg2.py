# The recording thread's psycopg2 scenario (test/integration/recording-thread-clients.test.ts).
import json, sys, io, threading, psycopg2
out = {}
conn = psycopg2.connect(sys.argv[1])
cur = conn.cursor()
cur.execute("SELECT id, full_name FROM customers WHERE id < %s ORDER BY id", (4,))
out['params'] = cur.fetchall()
cur.execute("CREATE TEMP TABLE t (id int, name text)")
cur.executemany("INSERT INTO t VALUES (%s, %s)", [(i, 'n%d' % i) for i in range(5)])
nc = conn.cursor('big')
nc.itersize = 100
nc.execute("SELECT n FROM generate_series(1, 450) AS n")
out['named'] = sum(r[0] for r in nc)
nc.close()
buf = io.StringIO()
cur.copy_expert("COPY (SELECT id, name FROM t ORDER BY id) TO STDOUT", buf)
out['copy_out'] = buf.getvalue()
cur.copy_expert("COPY t FROM STDIN", io.StringIO("7\tseven\n8\teight\n"))
conn.commit()
try:
    cur.execute("SELECT 1/0")
except psycopg2.Error as e:
    out['err'] = e.pgcode
conn.rollback()
try:
    cur.copy_expert("COPY t FROM STDIN", io.StringIO("bad\tx\n"))
except psycopg2.Error as e:
    out['copy_err'] = e.pgcode
conn.rollback()
try:
    lo = conn.lobject(0, 'wb')
    lo.write(b'hello')
    out['lo'] = 'ran'
    lo.close()
except psycopg2.Error as e:
    out['lo'] = str(e).strip()
conn.rollback()
conn.autocommit = True
cur.execute("SELECT count(*) FROM orders")
out['auto'] = cur.fetchall()
# A statement cancelled from another connection (CancelRequest through warden).
threading.Timer(0.5, conn.cancel).start()
try:
    cur.execute("SELECT pg_sleep(10)")
except psycopg2.Error as e:
    out['cancelled'] = e.pgcode
conn.close()
print(json.dumps(out))
