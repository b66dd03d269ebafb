"""A table extension written with the PyPI osquery SDK, unchanged: `py_probe` has one row
for this process, one for its parent and one for pid 1. Each generate call appends the
context it received (JSON, one line) to the file named by $PROBE_CONTEXT_LOG.

Run as osquery runs extensions: table_extension.py --socket PATH --interval 1
"""
import json
import os

import osquery


@osquery.register_plugin
class Probe(osquery.TablePlugin):
    def name(self):
        return "py_probe"

    def columns(self):
        return [
            osquery.TableColumn(name="pid", type=osquery.INTEGER),
            osquery.TableColumn(name="label", type=osquery.STRING),
            osquery.TableColumn(name="ratio", type="DOUBLE"),
        ]

    def generate(self, context):
        with open(os.environ["PROBE_CONTEXT_LOG"], "a") as log:
            log.write(json.dumps(context) + "\n")
        return [
            {"pid": str(os.getpid()), "label": "self", "ratio": "0.5"},
            {"pid": str(os.getppid()), "label": "parent", "ratio": ""},
            {"pid": "1", "label": "init"},
        ]


if __name__ == "__main__":
    osquery.start_extension(name="py_probe_ext", version="1.2.3")
