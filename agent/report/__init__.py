"""``growthloop report``: what the agent learned and how it is doing, as HTML and markdown.

Three layers, each usable alone (the dashboard reuses the first two):
:mod:`agent.report.data` gathers one value tree per account and period from the store,
:mod:`agent.report.charts` draws it with matplotlib as inline SVG,
:mod:`agent.report.render` fills the Jinja2 templates in ``templates/`` and writes the files.
"""

DEFAULT_DAYS = 30  # the report's period by default: a month, the period the issue asks for
