"""The dashboard and JSON API the daemon serves beside ``/healthz`` and ``/metrics`` (one port).

Read-only. Off unless ``GROWTHLOOP_DASHBOARD_TOKEN`` is set (docs/dashboard.md):

- :mod:`agent.dashboard.access`: who may read what (the dashboard token, the optional
  ``/metrics`` token, the browser's session cookie), as an aiohttp middleware;
- :mod:`agent.dashboard.views`: what the pages and the API show, read through the same store
  methods as ``growthloop health``, ``growthloop posts`` and ``growthloop drafts``, plus the
  report's value tree (:mod:`agent.report.data`);
- :mod:`agent.dashboard.api`: ``/api/...``, JSON;
- :mod:`agent.dashboard.pages`: ``/dashboard...``, server-rendered HTML (Jinja2, the report's
  account section and charts), no script;
- :mod:`agent.dashboard.app`: the routes, added to the daemon's aiohttp application.
"""
