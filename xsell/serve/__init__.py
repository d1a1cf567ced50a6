"""Serving the published answers: `xsell serve` (a read-only HTTP API) and the build
identity that it and `xsell audience` report.

- :mod:`xsell.serve.published` names the build a reader has open (run id, publish time)
  from the record the publish step writes beside the published file;
- :mod:`xsell.serve.queries` holds every query the API and the audience export run (bound
  parameters only, product names joined in);
- :mod:`xsell.serve.app` is the FastAPI application, which follows a republish.

Importing this package does not import FastAPI: the publish step uses
:mod:`xsell.serve.published` without it.
"""
