"""pytest entry point: the suite's plugin (targets, requirements, capabilities, leak checks,
reports). See fixtures/plugin.py for the options it adds."""

pytest_plugins = ["fixtures.plugin"]
