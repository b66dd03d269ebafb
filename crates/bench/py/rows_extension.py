"""A Python table extension (PyPI osquery SDK) with $ROWS rows of four columns, for
bench-extensions. Run as osquery runs extensions: rows_extension.py --socket PATH"""
import os

import osquery

ROWS = int(os.environ.get("ROWS", "10000"))


@osquery.register_plugin
class Rows(osquery.TablePlugin):
    def name(self):
        return "bench_rows"

    def columns(self):
        return [
            osquery.TableColumn(name="id", type=osquery.INTEGER),
            osquery.TableColumn(name="name", type=osquery.STRING),
            osquery.TableColumn(name="path", type=osquery.STRING),
            osquery.TableColumn(name="size", type="BIGINT"),
        ]

    def generate(self, context):
        return [
            {"id": str(i), "name": "row%d" % i, "path": "/var/lib/bench/%d" % i,
             "size": str(i * 4096)}
            for i in range(ROWS)
        ]


if __name__ == "__main__":
    osquery.start_extension(name="bench_rows_ext", version="1.0.0")
