"""The store's writer process for big generations: run as a script (`python -I -S stager.py
DB PRAGMA...`, the pragmas of db.PRAGMAS), it executes the SQL the orchestrator sends it on a
connection of its own, in one transaction, and commits it when told, while the orchestrator
goes on generating tasks.

Why a process: inserting 100,000 task rows costs SQLite half a second, which the generator
would otherwise wait for. A thread would not do: sqlite3's executemany takes the GIL back for
every row, and a busy generator holds it for 5 ms at a time.

Frames on stdin: 8 bytes (big-endian length) then a marshal'ed tuple:
    ("rows", sql, [row, ...])   executemany(sql, rows)
    ("commit",)                 commit; answer one line on stdout, `ok` or `error <Type> <message>`;
                                after `ok`, checkpoint the WAL and exit (the orchestrator goes on
                                meanwhile: the 35 MB a 100k-task generation wrote are copied into
                                the database file off its path)
End of input before a commit: roll back. After an error, every frame but the commit is ignored
(the commit's answer names the error). Nothing here imports DryPipe: the script runs with -I -S."""
import marshal
import sqlite3
import sys


def read_frame(f):
    head = f.read(8)
    if len(head) < 8:
        return None
    n = int.from_bytes(head, "big")
    data = f.read(n)
    if len(data) < n:
        return None
    return marshal.loads(data)


def serve(path: str, pragmas, inp, out) -> None:
    con = sqlite3.connect(path)
    for pragma in pragmas:
        con.execute(f"PRAGMA {pragma}")
    con.execute("PRAGMA wal_autocheckpoint=0")  # (checkpointed after the answer, not before)
    error = None
    while True:
        frame = read_frame(inp)
        if frame is None:  # the orchestrator is gone (or closed us) before committing
            con.rollback()
            return
        if frame[0] == "rows":
            if error is None:
                try:
                    con.executemany(frame[1], frame[2])
                except sqlite3.Error as e:
                    error = e
                    con.rollback()
        elif frame[0] == "commit":
            if error is None:
                try:
                    con.commit()
                except sqlite3.Error as e:
                    error = e
            if error is None:
                out.write(b"ok\n")
            else:
                msg = str(error).replace("\n", " ")
                out.write(f"error {type(error).__name__} {msg}\n".encode("utf-8", "backslashreplace"))
            out.flush()
            if error is None:
                try:
                    con.execute("PRAGMA wal_checkpoint(PASSIVE)")
                except sqlite3.Error:
                    pass  # (the next commit of any connection checkpoints)
            con.close()
            return


if __name__ == "__main__":
    serve(sys.argv[1], sys.argv[2:], sys.stdin.buffer, sys.stdout.buffer)
