"""One call through the PyPI osquery SDK's client, printed as JSON.

Usage: client.py SOCKET METHOD [ARGS...]
  query SQL | columns SQL | ping | extensions | options
  register NAME SDK_VERSION REGISTRY_JSON | deregister UUID
  call REGISTRY ITEM REQUEST_JSON
"""
import json
import sys

import osquery
from osquery.extensions.ttypes import InternalExtensionInfo


def status(s):
    return {"code": s.code, "message": s.message, "uuid": s.uuid}


def main():
    sock, method, args = sys.argv[1], sys.argv[2], sys.argv[3:]
    ec = osquery.ExtensionClient(path=sock)
    if not ec.open(timeout=10):
        print("cannot open " + sock, file=sys.stderr)
        sys.exit(2)
    c = ec.extension_manager_client()
    if method == "query":
        r = c.query(args[0])
        out = {"status": status(r.status), "response": r.response}
    elif method == "columns":
        r = c.getQueryColumns(args[0])
        out = {"status": status(r.status), "response": r.response}
    elif method == "ping":
        out = status(c.ping())
    elif method == "extensions":
        out = {
            str(k): {"name": v.name, "version": v.version,
                     "sdk_version": v.sdk_version, "min_sdk_version": v.min_sdk_version}
            for k, v in c.extensions().items()
        }
    elif method == "options":
        out = {k: {"value": v.value, "default_value": v.default_value, "type": v.type}
               for k, v in c.options().items()}
    elif method == "register":
        info = InternalExtensionInfo(name=args[0], version="1.0", sdk_version=args[1],
                                     min_sdk_version="1.0.0")
        out = status(c.registerExtension(info, json.loads(args[2])))
    elif method == "call":
        r = c.call(args[0], args[1], json.loads(args[2]))
        out = {"status": status(r.status), "response": r.response}
    elif method == "deregister":
        out = status(c.deregisterExtension(int(args[0])))
    else:
        raise SystemExit("unknown method " + method)
    print(json.dumps(out))


main()
