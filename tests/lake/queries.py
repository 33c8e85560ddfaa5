"""Runs the SQL of the analyst's guide on a lake and prints the results as JSON.

    python3 tests/lake/queries.py docs/analytics.md duckdb|clickhouse [query ...]

Run in the folder that holds `lake/`. The guide's fenced ```sql blocks are read as they are: the
block starting `-- setup: <engine>` creates the views, each block starting `-- query: <name>` is
one query (all of them, or those named). Prints `{"engine": ..., "queries": {name: {"columns":
[...], "rows": [[...], ...]}}}`, times as `YYYY-MM-DDTHH:MM:SSZ` in UTC and numbers as integers
where they are whole, so both engines' answers compare as they are. ClickHouse runs in-process
through chdb.
"""

import datetime
import decimal
import json
import re
import sys


def sql_blocks(guide_path):
    text = open(guide_path, encoding="utf-8").read()
    setups, queries = {}, {}
    for block in re.findall(r"```sql\n(.*?)```", text, re.S):
        first = block.split("\n", 1)[0].strip()
        if m := re.fullmatch(r"-- setup: (\w+)", first):
            setups[m.group(1)] = block
        elif m := re.fullmatch(r"-- query: (\w+)", first):
            queries[m.group(1)] = block
    return setups, queries


def statements(block):
    lines = [l for l in block.splitlines() if not l.strip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


def iso(value):
    if value.tzinfo is not None:
        value = value.astimezone(datetime.timezone.utc).replace(tzinfo=None)
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def plain(value):
    if isinstance(value, datetime.datetime):
        return iso(value)
    if isinstance(value, datetime.date):
        return value.strftime("%Y-%m-%dT00:00:00Z")
    if isinstance(value, (decimal.Decimal, float)) and value == int(value):
        return int(value)
    if isinstance(value, decimal.Decimal):
        return float(value)
    return value


def run_setup(execute, setup):
    """Runs the setup's statements; a view over a type with no file yet is left out (a query that
    reads it then fails, naming it)."""
    for statement in statements(setup):
        try:
            execute(statement)
        except Exception as e:  # noqa: BLE001 (each engine raises its own kind)
            missing = ("No files found", "no files with provided path")
            if statement.upper().startswith("CREATE VIEW") and any(m in str(e) for m in missing):
                print(f"view left out, no file yet: {statement.split()[2]}", file=sys.stderr)
                continue
            raise


def run_duckdb(setup, queries):
    import duckdb

    con = duckdb.connect()
    run_setup(con.execute, setup)
    out = {}
    for name, sql in queries.items():
        cursor = con.execute(sql)
        columns = [d[0] for d in cursor.description]
        out[name] = {"columns": columns, "rows": [[plain(v) for v in row] for row in cursor.fetchall()]}
    return out


def clickhouse_value(value, ch_type):
    if value is None:
        return None
    if "DateTime" in ch_type:
        # JSONCompact prints times in the session's time zone, which the setup sets to UTC.
        text = value.split(".")[0]
        return datetime.datetime.strptime(text, "%Y-%m-%d %H:%M:%S").strftime("%Y-%m-%dT%H:%M:%SZ")
    if re.search(r"\bDate\b|Date32", ch_type):
        return value + "T00:00:00Z"
    if "Int" in ch_type:
        return int(value)
    if "Float" in ch_type or "Decimal" in ch_type:
        return plain(decimal.Decimal(str(value)))
    return value


def run_clickhouse(setup, queries):
    from chdb import session

    s = session.Session()
    run_setup(s.query, setup)
    out = {}
    for name, sql in queries.items():
        result = s.query(sql, "JSONCompact")
        data = json.loads(result.bytes() if hasattr(result, "bytes") else str(result))
        columns = [c["name"] for c in data["meta"]]
        types = [c["type"] for c in data["meta"]]
        rows = [[clickhouse_value(v, t) for v, t in zip(row, types)] for row in data["data"]]
        out[name] = {"columns": columns, "rows": rows}
    s.close()
    return out


def main():
    guide, engine, *only = sys.argv[1:]
    setups, queries = sql_blocks(guide)
    if only:
        queries = {k: v for k, v in queries.items() if k in only}
    if engine == "duckdb":
        results = run_duckdb(setups["duckdb"], queries)
    elif engine == "clickhouse":
        results = run_clickhouse(setups["clickhouse"], queries)
    else:
        sys.exit(f"unknown engine {engine!r}")
    json.dump({"engine": engine, "queries": results}, sys.stdout)


if __name__ == "__main__":
    main()
