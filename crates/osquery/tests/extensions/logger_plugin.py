#!/usr/bin/env python3
"""A logger plugin written with the osquery Python SDK (PyPI `osquery`, unchanged), for
process tests of `--logger_plugin=<extension's>`.

Started as osquery starts an extension:
    logger_plugin.py --socket <manager socket> [--timeout N] [--interval N]

Environment:
    OXQUERY_TEST_LOGGER_PLUGIN  the plugin's name (default: test_logger)
    OXQUERY_TEST_LOGGER_OUT     the file every call is appended to, one JSON object per
                                line: {"request": <the request map>, "code": <the status
                                code answered>} (required)
    OXQUERY_TEST_LOGGER_FAIL    when this file exists, result lines (`string`,
                                `snapshot`) are refused with status 1, so a test can
                                check that the daemon keeps them and sends them again
    OXQUERY_TEST_LOGGER_FEATURES  when set, the plugin answers `{"action": "features"}`
                                with this status code (osquery's bit mask: 1 status
                                lines, 2 event rows) and takes `init`, `status` and
                                `event` requests with status 0, as a C++ or Go logger
                                plugin that asks for them does

Otherwise every request is answered as the SDK answers it (`init` and `status` with
status 1, "Use Glog for status logging"; `{"action": "features"}` with status 1, which
osquery reads as "send me the status log").
"""

import json
import os

import osquery
from osquery.extensions.ttypes import ExtensionResponse, ExtensionStatus

PLUGIN_NAME = os.environ.get("OXQUERY_TEST_LOGGER_PLUGIN", "test_logger")
OUT = os.environ["OXQUERY_TEST_LOGGER_OUT"]


def refusing():
    """Whether the test asked for result lines to be refused."""
    path = os.environ.get("OXQUERY_TEST_LOGGER_FAIL")
    return bool(path) and os.path.exists(path)


@osquery.register_plugin
class TestLoggerPlugin(osquery.LoggerPlugin):
    """Appends every call it receives to OXQUERY_TEST_LOGGER_OUT."""

    def name(self):
        return PLUGIN_NAME

    def call(self, context):
        features = os.environ.get("OXQUERY_TEST_LOGGER_FEATURES")
        if features and context.get("action") == "features":
            response = ExtensionResponse(
                status=ExtensionStatus(code=int(features), message="OK"), response=[]
            )
        elif features and ("init" in context or "status" in context or "event" in context):
            response = ExtensionResponse(
                status=ExtensionStatus(code=0, message="OK"), response=[]
            )
        else:
            response = super().call(context)
        with open(OUT, "a", encoding="utf-8") as out:
            entry = {"request": dict(context), "code": response.status.code}
            out.write(json.dumps(entry, sort_keys=True) + "\n")
        return response

    def log_string(self, value):
        if refusing():
            return ExtensionStatus(code=1, message="refused by the test")
        return ExtensionStatus(code=0, message="OK")


if __name__ == "__main__":
    osquery.start_extension(name="oxquery_test_logger", version="1.0.0")
