#!/usr/bin/env python3
"""A config plugin written with the osquery Python SDK (PyPI `osquery`, unchanged), for
process tests of `--config_plugin=<extension's>`.

Started as osquery starts an extension:
    config_plugin.py --socket <manager socket> [--timeout N] [--interval N]

Environment:
    OXQUERY_TEST_CONFIG_PLUGIN  the plugin's name (default: test_config)
    OXQUERY_TEST_CONFIG_SOURCE  the source name the config is served under
                                (default: test_source)
    OXQUERY_TEST_CONFIG_FILE    a file whose text is served as the config, read again at
                                every genConfig (a test changes it to test refreshes; a
                                missing file makes the call fail)
    OXQUERY_TEST_CONFIG         the config's JSON text, when no file is named
                                (default: an empty schedule)
    OXQUERY_TEST_CALLS          a file every request received is appended to, one JSON
                                object per line (optional)

The plugin writes nothing else.
"""

import json
import os

import osquery

PLUGIN_NAME = os.environ.get("OXQUERY_TEST_CONFIG_PLUGIN", "test_config")
SOURCE_NAME = os.environ.get("OXQUERY_TEST_CONFIG_SOURCE", "test_source")


def record(request):
    """Appends `request` to OXQUERY_TEST_CALLS, if set."""
    path = os.environ.get("OXQUERY_TEST_CALLS")
    if path:
        with open(path, "a", encoding="utf-8") as out:
            out.write(json.dumps(dict(request), sort_keys=True) + "\n")


@osquery.register_plugin
class TestConfigPlugin(osquery.ConfigPlugin):
    """Serves the config named by the environment."""

    def name(self):
        return PLUGIN_NAME

    def call(self, context):
        record(context)
        return super().call(context)

    def content(self):
        path = os.environ.get("OXQUERY_TEST_CONFIG_FILE")
        if path:
            # A missing file raises: the SDK's server then fails the call, which the
            # daemon must survive (it keeps its last good config).
            with open(path, encoding="utf-8") as f:
                text = f.read()
        else:
            text = os.environ.get("OXQUERY_TEST_CONFIG", '{"schedule": {}}')
        return [{SOURCE_NAME: text}]


if __name__ == "__main__":
    osquery.start_extension(name="oxquery_test_config", version="1.0.0")
