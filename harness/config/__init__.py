"""Protocol configuration: the typed schema, safe YAML reading, error locations and plugin checks.

- :mod:`harness.config.models`: the protocol file's pydantic schema (``harness schema``);
- :mod:`harness.config.yamlio`: UTF-8, duplicate keys, bounded aliases, key lines;
- :mod:`harness.config.errors`: validation errors as one line with file, line and key path;
- :mod:`harness.config.check`: names and options checked against the installed plugins;
- :mod:`harness.config.summary`: what ``harness validate`` found in the dataset.
"""
