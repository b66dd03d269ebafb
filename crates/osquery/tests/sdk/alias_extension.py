"""A table extension written with the PyPI osquery SDK whose routes add what SDK 3.1.1
cannot declare itself but osquery's core accepts: a column alias (`process_id`, reading
`pid`) and a table alias (`py_aliased_view`). `py_aliased` has one row for this process
and one for its parent.

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


if __name__ == "__main__":
    osquery.start_extension(name="py_aliased_ext", version="1.0.0")
