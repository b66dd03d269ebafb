"""A table extension written with the PyPI osquery SDK whose routes add what SDK 3.1.1
cannot declare itself but osquery's core accepts: a column alias (`process_id`, reading
`pid`) and a table alias (`py_aliased_view`). `py_aliased` has one row for this process
and one for its parent. `py_counted` has the numbers 1 to 100: more rows than a scan's
first batch, so a join of two of this extension's scans holds one open while the other
runs.

Run as osquery runs extensions: alias_extension.py --socket PATH --interval 1
"""
import os

import osquery


@osquery.register_plugin
class Aliased(osquery.TablePlugin):
    def name(self):
        return "py_aliased"

    def columns(self):
        return [
            osquery.TableColumn(name="pid", type="BIGINT"),
            osquery.TableColumn(name="label", type=osquery.STRING),
        ]

    def routes(self):
        # The rows osquery's own TablePlugin::routeInfo sends for aliases.
        return super().routes() + [
            {"id": "alias", "alias": "py_aliased_view"},
            {"id": "columnAlias", "name": "process_id", "target": "pid"},
        ]

    def generate(self, context):
        return [
            {"pid": str(os.getpid()), "label": "self"},
            {"pid": str(os.getppid()), "label": "parent"},
        ]


@osquery.register_plugin
class Counted(osquery.TablePlugin):
    def name(self):
        return "py_counted"

    def columns(self):
        return [osquery.TableColumn(name="n", type="BIGINT")]

    def generate(self, context):
        return [{"n": str(n)} for n in range(1, 101)]


if __name__ == "__main__":
    osquery.start_extension(name="py_aliased_ext", version="1.0.0")
