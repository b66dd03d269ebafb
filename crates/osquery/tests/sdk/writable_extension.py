"""A writable table extension on the PyPI osquery SDK. SDK 3.1.1's TablePlugin answers
only `generate` and `columns`, so this plugin adds what osquery's C++ TablePlugin offers
(`insert`, `update`, `delete`) in its own `call`; the SDK's server and dispatch are
unchanged. `py_notes` keeps rows in memory by rowid and returns each with its `rowid`.
Every write request is appended (JSON, one line) to the file named by $WRITES_LOG.

A note whose title is "readonly", "taken" or "refused" is answered with the status
`readonly`, `constraint` or `failure` (message "refused by the extension").

Run as osquery runs extensions: writable_extension.py --socket PATH --interval 1
"""
import json
import os

import osquery
from osquery.extensions.ttypes import ExtensionResponse, ExtensionStatus

COLUMNS = ["title", "body", "stars", "weight"]


def answer(rows):
    return ExtensionResponse(status=ExtensionStatus(code=0, message="OK"), response=rows)


@osquery.register_plugin
class Notes(osquery.TablePlugin):
    def __init__(self):
        self.rows = {}
        self.next_rowid = 1

    def name(self):
        return "py_notes"

    def columns(self):
        return [
            osquery.TableColumn(name="title", type=osquery.STRING),
            osquery.TableColumn(name="body", type=osquery.STRING),
            osquery.TableColumn(name="stars", type=osquery.INTEGER),
            osquery.TableColumn(name="weight", type="DOUBLE"),
        ]

    def generate(self, context):
        rows = []
        for rowid, values in sorted(self.rows.items()):
            row = {"rowid": str(rowid)}
            for name, value in zip(COLUMNS, values):
                if value is not None:
                    row[name] = str(value)
            rows.append(row)
        return rows

    def call(self, request):
        action = request.get("action")
        if action not in ("insert", "update", "delete"):
            return super().call(request)
        with open(os.environ["WRITES_LOG"], "a") as log:
            log.write(json.dumps(dict(request), sort_keys=True) + "\n")
        if action == "delete":
            self.rows.pop(int(request["id"]), None)
            return answer([{"status": "success"}])
        values = json.loads(request["json_value_array"])
        refusal = {"readonly": {"status": "readonly"},
                   "taken": {"status": "constraint"},
                   "refused": {"status": "failure", "message": "refused by the extension"}}
        if values[0] in refusal:
            return answer([refusal[values[0]]])
        if action == "insert":
            if request.get("auto_rowid") == "true":
                rowid = int(request["id"])
            else:
                rowid = self.next_rowid
            self.next_rowid = max(self.next_rowid, rowid + 1)
            self.rows[rowid] = values
            return answer([{"status": "success", "id": str(rowid)}])
        rowid = int(request["id"])
        self.rows.pop(rowid, None)
        self.rows[int(request.get("new_id", rowid))] = values
        return answer([{"status": "success"}])


if __name__ == "__main__":
    osquery.start_extension(name="py_notes_ext", version="1.0.0")
