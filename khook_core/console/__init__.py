"""The console: a query API over the state store (read-only but for deciding an approval), and
the dashboard page that reads it.

``api`` routes a request, ``access`` decides who may ask (``settings.ConsoleSettings``),
``queries`` turns query strings into store filters, ``views`` turns store records into JSON,
``openapi`` describes it all, and ``static/`` holds the page (plain HTML, CSS and JavaScript
with Chart.js vendored: no build step). Served by ``functions/console`` in the cloud and by
``khook up`` locally.
"""
